"""In-process containers run their lifespan (issue 12, defect 5).

Startup code runs before the first request and shutdown code when the run ends; a
startup failure is one `ContainerError` line; ``factory = true`` builds the app from a
function; and from Python an app object can be handed to `GepaRun`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gepa_cli.config import ContainerConfig
from gepa_cli.errors import ConfigError, ContainerError
from gepa_cli.runner import GepaRun
from gepa_cli.runtime.container import ContainerLauncher
from support.task_dir import make_task_dir

# The reference task, but its keywords only exist once the lifespan has loaded them,
# and its shutdown leaves a mark on disk.
LIFESPAN_APP = """
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from reference_container import create_app

loaded = {}


@asynccontextmanager
async def lifespan(app):
    if os.environ.get("GEPA_TEST_BREAK_STARTUP"):
        raise RuntimeError("model weights not found at /models/x.bin")
    loaded["ready"] = True
    yield
    Path(os.environ["GEPA_TEST_SHUTDOWN_MARK"]).write_text("shut down")


def create():
    inner = create_app()
    outer = FastAPI(lifespan=lifespan)

    @outer.middleware("http")
    async def needs_startup(request, call_next):
        if not loaded.get("ready"):
            return JSONResponse({"error": {"code": "not_loaded", "message": "no startup"}}, 503)
        return await call_next(request)

    outer.mount("/", inner)
    return outer


app = create()
"""


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "task"
    make_task_dir(root)
    (root / "lifespan_app.py").write_text(LIFESPAN_APP)
    monkeypatch.setenv("GEPA_TEST_SHUTDOWN_MARK", str(tmp_path / "shutdown.mark"))
    monkeypatch.syspath_prepend(str(root))
    for name in ("lifespan_app", "reference_container"):
        sys.modules.pop(name, None)
    return root


def test_startup_runs_before_requests_and_shutdown_after(task: Path, tmp_path: Path) -> None:
    config = ContainerConfig(app="lifespan_app:app", startup_timeout_seconds=10)
    with ContainerLauncher(config, base_dir=task, log_dir=tmp_path) as url:
        assert httpx.get(f"{url}/program").json()["program_id"] == "keywords"
        assert not (tmp_path / "shutdown.mark").exists()
    assert (tmp_path / "shutdown.mark").read_text() == "shut down"


def test_a_startup_failure_is_one_container_error(
    task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEPA_TEST_BREAK_STARTUP", "1")
    config = ContainerConfig(app="lifespan_app:app", startup_timeout_seconds=10)
    launcher = ContainerLauncher(config, base_dir=task, log_dir=tmp_path / "logs")
    with pytest.raises(ContainerError) as caught:
        launcher.start()
    message = str(caught.value)
    assert "\n" not in message
    assert "app 'lifespan_app:app' failed at startup" in message
    assert "RuntimeError: model weights not found at /models/x.bin" in message
    log = (tmp_path / "logs" / "container.log").read_text()
    assert "Traceback" in log and "model weights not found" in log


def test_gepa_run_reports_a_startup_failure_in_one_line(task: Path, tmp_path: Path) -> None:
    config = make_task_dir(task, container={"app": "lifespan_app:app"}, cache={"mode": "off"})
    result = subprocess.run(
        [sys.executable, "-m", "gepa_cli.cli.main", "gepa", "run", "--config", str(config),
         "--output-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env={**_env(), "GEPA_TEST_BREAK_STARTUP": "1"},
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error [container_error]: the in-process container app")
    assert "model weights not found" in lines[0]


def test_factory_builds_the_app(task: Path, tmp_path: Path) -> None:
    config = ContainerConfig(app="lifespan_app:create", factory=True)
    with ContainerLauncher(config, base_dir=task, log_dir=tmp_path) as url:
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert (tmp_path / "shutdown.mark").exists()
    with pytest.raises(ContainerError, match="not an ASGI application"):
        ContainerLauncher(
            ContainerConfig(app="lifespan_app:loaded"), base_dir=task, log_dir=tmp_path
        ).start()
    with pytest.raises(ValueError, match="factory = true needs app"):
        ContainerConfig(url="http://127.0.0.1:9", factory=True)


def test_an_app_object_runs_from_python(task: Path, tmp_path: Path) -> None:
    import lifespan_app

    config = make_task_dir(task, container={"app": None}, cache={"mode": "off"})
    result = GepaRun.from_toml(
        config, app=lifespan_app.create(), run_id="obj", output_dir=tmp_path / "runs"
    ).execute()
    assert result.state == "finished"
    assert (tmp_path / "shutdown.mark").exists()
    with_source = make_task_dir(task, name="both.toml")
    with pytest.raises(ConfigError, match="must not be set too"):
        GepaRun.from_toml(with_source, app=lifespan_app.create())


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GEPA_TEST_BREAK_STARTUP"}
