"""A worker records a run's outcome and error from the run's manifest."""

from __future__ import annotations

import threading
from pathlib import Path

from gepa_cli.service.queue import RunQueue
from gepa_cli.service.submit import ServiceSettings, submit
from gepa_cli.service.worker import Executor
from support.task_dir import make_task_dir


def _settings(root: Path) -> ServiceSettings:
    return ServiceSettings(
        db=str(root / "service.sqlite"),
        output_dir=root / "runs",
        allowed_roots=(root,),
        data_dir=root / "data",
    )


def test_a_failed_run_reports_the_error_its_manifest_records(tmp_path: Path) -> None:
    # the container is unreachable: the run fails before its engine starts
    config = make_task_dir(
        tmp_path / "task",
        container={"app": None, "url": "http://127.0.0.1:9", "startup_timeout_seconds": 0.5},
    )
    settings = _settings(tmp_path)
    queue = RunQueue.open(settings.db)
    request = submit(queue, settings, {"config_path": str(config)})
    claimed = queue.claim("w", 30.0)
    assert claimed is not None and claimed.request_id == request.request_id
    Executor(queue, settings, threading.Event()).execute(claimed, "w")

    done = queue.get(request.request_id)
    assert done.status == "failed"
    assert done.error is not None and done.error["code"] == "container_error"
    assert done.error["message"].startswith("container at http://127.0.0.1:9 did not answer")
    assert done.manifest is not None and done.manifest["state"] == "failed"
    assert done.manifest["stopped_by"] == "container_error"


def test_a_child_that_dies_without_a_manifest_names_its_log(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path / "task")
    settings = _settings(tmp_path)
    queue = RunQueue.open(settings.db)
    request = submit(queue, settings, {"config_path": str(config)})
    # the run directory is taken by something that is not a run: `gepa run` refuses it
    # before it writes anything
    run_dir = Path(request.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.json").write_text("not a checkpoint")
    claimed = queue.claim("w", 30.0)
    assert claimed is not None
    Executor(queue, settings, threading.Event()).execute(claimed, "w")

    done = queue.get(request.request_id)
    assert done.status == "failed" and done.manifest is None
    assert done.error is not None and done.error["code"] == "run_failed"
    assert done.error["exit_code"] == 2
    log = settings.log_dir / f"{request.request_id}.err"
    assert str(log) in done.error["message"] and "exited 2" in done.error["message"]
    assert "checkpoint.json" in log.read_text()
