"""`gepa-cli container check` names route and field for every handshake violation case
of test_container_contract, and passes a correct container."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_container_contract import CASES, Patch

from gepa_cli.runtime.container import UvicornThread
from support.cli import run_cli
from support.patched_app import PatchedApp
from support.reference_container import create_app
from support.task_dir import make_task_dir

# the reference task, but every rollout fails
REFUSING = """
from fastapi.responses import JSONResponse
from reference_container import create_app

app = create_app()


@app.middleware("http")
async def refuse(request, call_next):
    if request.url.path == "/rollout":
        return JSONResponse({"status": "failed", "error": "no such backend"})
    return await call_next(request)
"""
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_replies" / "gepa.toml"


def check(*args: str) -> Any:
    return run_cli("container", "check", *args)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[UvicornThread] = []

    def start(app: Any) -> str:
        server = UvicornThread(app, log_level="critical")
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize(("name", "route", "patch", "field"), CASES, ids=[c[0] for c in CASES])
def test_check_names_route_and_field(
    serve: Any, name: str, route: str, patch: Patch | bytes, field: str
) -> None:
    app = create_app()
    url = serve(PatchedApp(app, {route: patch}))
    result = check("--url", url, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["verdict"].startswith("FAIL")
    found = [v for v in report["violations"] if v["route"] == route and v["field"].endswith(field)]
    assert found, report["violations"]
    assert found[0]["expected"] and found[0]["got"]
    human = check("--url", url)
    assert human.exit_code == 1
    assert route in human.stderr and field in human.stderr and "verdict: FAIL" in human.stderr


def test_a_correct_container_passes(serve: Any) -> None:
    app = create_app()
    url = serve(app)
    result = check("--url", url, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["contract"] == "gepa_cli.container.v1"
    routes = [step["route"] for step in report["steps"]]
    assert routes == [
        "GET /health", "GET /metadata", "GET /program", "GET /dataset",
        "POST /dataset/rows [train]", "POST /rollout [train]",
        "POST /dataset/rows [test]", "POST /rollout [test]",
    ]  # fmt: skip
    assert all(step["ms"] >= 0 for step in report["steps"])
    assert app.state.stats.live("POST /rollout") == 2  # one sample rollout per split


def test_check_by_config_starts_the_container(tmp_path: Path) -> None:
    result = check("--config", str(EXAMPLE), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["route"] for s in report["steps"]][-1] == "POST /rollout [test]"
    # a failing sample rollout fails the check and says why
    task = tmp_path / "task"
    config = make_task_dir(task, container={"app": "refusing_container:app"})
    (task / "refusing_container.py").write_text(REFUSING)
    failed = check("--config", str(config))
    assert failed.exit_code == 1
    assert "sample rollout at POST /rollout failed: no such backend" in failed.stderr


def test_unreachable_and_usage_errors(tmp_path: Path) -> None:
    down = check("--url", "http://127.0.0.1:9", "--timeout", "0.5", "--json")
    assert down.exit_code == 1
    report = json.loads(down.stdout)
    assert report["steps"][0]["route"] == "GET /health" and not report["steps"][0]["ok"]
    assert len(report["steps"]) == 1
    both = check("--url", "http://x", "--config", str(EXAMPLE))
    assert both.exit_code == 2 and "exactly one of --config and --url" in both.stderr
    assert check().exit_code == 2
    assert check("--url", "http://x", "--contract", "v9").exit_code == 2
