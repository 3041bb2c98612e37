"""A worker records a run's outcome and error from the run's manifest."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from gepa_cli.artifacts.liveness import pid_alive, read_lock
from gepa_cli.service import worker
from gepa_cli.service.db import DatabaseUnavailableError, open_database
from gepa_cli.service.launch import ChildSpec, RunProcess, start_child
from gepa_cli.service.queue import Request, RunQueue
from gepa_cli.service.submit import ServiceSettings, submit
from gepa_cli.service.worker import Executor
from support.cli import run_cli
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


def test_a_run_left_by_another_host_is_taken_over_and_resumed(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path / "task", latency=0.0)
    settings = _settings(tmp_path)
    queue = RunQueue.open(settings.db)
    first = submit(queue, settings, {"config_path": str(config)})
    claimed = queue.claim("host-a/1-0", 30.0)
    assert claimed is not None
    Executor(queue, settings, threading.Event()).execute(claimed, "host-a/1-0")
    assert queue.get(first.request_id).status == "succeeded"
    # as if host A died mid-run: no manifest yet, and its lock names a pid on host A
    run_dir = Path(first.run_dir)
    (run_dir / "manifest.json").unlink()
    lock = orjson.loads((run_dir / "checkpoint.json").read_bytes())["runner"]
    (run_dir / "run.lock").write_bytes(
        orjson.dumps(
            {
                "run_id": first.run_id,
                "pid": 1,
                "host": "host-a.elsewhere",
                "started_at": lock["started_at"],
                "heartbeat_at": lock["started_at"],
            }
        )
    )
    queue.delete(first.request_id)
    again = queue.insert(
        run_id=first.run_id,
        config_path=config,
        base_dir=None,
        run_dir=run_dir,
        container_key=first.container_key,
        namespace_key=first.namespace_key,
    )
    claimed = queue.claim("host-b/2-0", 30.0)
    assert claimed is not None and claimed.request_id == again.request_id
    Executor(queue, settings, threading.Event()).execute(claimed, "host-b/2-0")

    done = queue.get(again.request_id)
    assert done.status == "succeeded", done.error
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert [c["state"] for c in manifest["state_history"]].count("running") == 2


class _LostDatabase(RunQueue):
    """A queue whose database goes away once the run is under way (``lost``)."""

    lost = False

    def heartbeat(self, request_id: str, owner: str, lease_seconds: float) -> str | None:
        if self.lost:
            raise DatabaseUnavailableError("the queue database went away")
        return super().heartbeat(request_id, owner, lease_seconds)

    def get(self, request_id: str) -> Request:
        if self.lost:
            raise DatabaseUnavailableError("the queue database went away")
        return super().get(request_id)


def test_a_worker_that_cannot_renew_its_lease_stops_its_run(tmp_path: Path) -> None:
    config = make_task_dir(tmp_path / "task", latency=0.05, container={"app": "slow_container:app"})
    settings = replace(_settings(tmp_path), lease_seconds=1.5)
    queue = _LostDatabase(open_database(settings.db))
    request = submit(queue, settings, {"config_path": str(config)})
    claimed = queue.claim("w", settings.lease_seconds)
    assert claimed is not None
    pids: list[int] = []

    def lose_the_database_once_the_run_runs() -> None:
        deadline = time.monotonic() + 60
        while (lock := read_lock(Path(request.run_dir))) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pids.append(lock.pid)
        queue.lost = True

    watcher = threading.Thread(target=lose_the_database_once_the_run_runs)
    watcher.start()
    Executor(queue, settings, threading.Event()).execute(claimed, "w")
    watcher.join()
    # the run was stopped (its lease would soon expire); the request is left as it was,
    # for the lease to expire and another worker to take it over
    assert pids and not pid_alive(pids[0])
    manifest = orjson.loads((Path(request.run_dir) / "manifest.json").read_bytes())
    assert manifest["state"] == "stopped" and manifest["stopped_by"] == "terminated"
    with queue.db.read() as tx:
        row = tx.one("SELECT status, lease_owner FROM requests")
    assert row == {"status": "running", "lease_owner": "w"}


def test_a_run_finished_during_the_attempt_by_a_previous_holder_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A holder whose lease expired while its run went on (a stalled heartbeat) may
    finish the run just after the new holder found it unfinished; the new holder's
    `gepa resume` then refuses a finished run, but the request has what it asked for."""
    config = make_task_dir(tmp_path / "task")
    settings = _settings(tmp_path)
    queue = RunQueue.open(settings.db)
    request = submit(queue, settings, {"config_path": str(config)})
    run_dir = Path(request.run_dir)
    finished = run_cli("gepa", "run", "--config", str(config), "--run-id", run_dir.name,
                       "--output-dir", str(run_dir.parent))  # fmt: skip
    assert finished.exit_code == 0, finished.stderr
    aside = tmp_path / "manifest.json"
    (run_dir / "manifest.json").rename(aside)  # not finished yet when the worker looks

    def previous_holder_finishes_first(spec: ChildSpec) -> RunProcess:
        aside.rename(run_dir / "manifest.json")
        return start_child(spec)

    monkeypatch.setattr(worker, "start_child", previous_holder_finishes_first)
    claimed = queue.claim("w", 30.0)
    assert claimed is not None
    Executor(queue, settings, threading.Event()).execute(claimed, "w")

    done = queue.get(request.request_id)
    assert "already finished" in (settings.log_dir / f"{request.request_id}.err").read_text()
    assert done.status == "succeeded", done.error
    assert done.manifest is not None and done.manifest["state"] == "finished"
