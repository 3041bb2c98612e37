"""RunDirectory, atomic JSON, registry, manifest and the run lock."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from pathlib import Path

import orjson
import pytest

from gepa_cli.artifacts.atomic import write_json_atomic
from gepa_cli.artifacts.events import EventWriter
from gepa_cli.artifacts.ledger import LedgerOffset, read_jsonl
from gepa_cli.artifacts.liveness import RunLock, lock_status, read_lock
from gepa_cli.artifacts.manifest import StateHistory, artifact_digests, write_manifest
from gepa_cli.artifacts.registry import RunRegistry
from gepa_cli.artifacts.rundir import RunDirectory
from gepa_cli.artifacts.schema import BestCandidate, FrontierDoc, Manifest, read_document
from gepa_cli.errors import ResumeError


def test_atomic_json_is_stable_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "frontier.json"
    write_json_atomic(target, {"b": 1, "a": {"z": [1, 2], "c": None}})
    write_json_atomic(target, {"b": 2, "a": {}})
    assert target.read_text() == '{\n  "a": {},\n  "b": 2\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["frontier.json"]
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})
    assert orjson.loads(target.read_bytes()) == {"a": {}, "b": 2}
    assert [p.name for p in target.parent.iterdir()] == ["frontier.json"]


def test_checkpoint_and_resume_leave_no_duplicate_rows(tmp_path: Path) -> None:
    rd = RunDirectory.for_run(tmp_path / "runs", "r1")
    rd.create()
    ledgers = rd.open_ledgers()
    events = EventWriter(ledgers.events, "r1")
    for seed in range(2):
        ledgers.rollouts.append({"candidate": "c0", "seed": seed, "score": 1.0})
        events.emit("rollout.finished", {"seed": seed})
    committed = {name: offset.model_dump() for name, offset in ledgers.flush().items()}
    write_json_atomic(rd.checkpoint, {"ledgers": committed, "next": 2})
    # the run goes on, then crashes before the next checkpoint
    ledgers.rollouts.append({"candidate": "c0", "seed": 2, "score": 0.0})
    events.emit("rollout.finished", {"seed": 2})
    ledgers.close()

    checkpoint = orjson.loads(rd.checkpoint.read_bytes())
    offsets = {name: LedgerOffset(**raw) for name, raw in checkpoint["ledgers"].items()}
    resumed = rd.open_ledgers(resume_from=offsets)
    events = EventWriter(resumed.events, "r1")
    assert events.next_seq == 2
    resumed.rollouts.append({"candidate": "c0", "seed": 2, "score": 0.0})
    events.emit("rollout.finished", {"seed": 2})
    resumed.close()
    assert [row["seed"] for row in read_jsonl(rd.rollouts)] == [0, 1, 2]
    assert [row["seq"] for row in read_jsonl(rd.events)] == [0, 1, 2]
    rd.write_normalized_events()
    assert b"run_id" not in rd.events_normalized.read_bytes()

    with pytest.raises(ResumeError, match="not empty"):
        rd.create()
    with pytest.raises(ResumeError, match=r"no offset for rollouts\.jsonl"):
        rd.open_ledgers(resume_from={"events.jsonl": LedgerOffset()})
    assert len(read_jsonl(rd.events)) == 3  # nothing was truncated
    broken = {**offsets, "candidates.jsonl": LedgerOffset(lines=5, bytes=999)}
    with pytest.raises(ResumeError, match="recorded 999"):
        rd.open_ledgers(resume_from=broken)
    assert len(read_jsonl(rd.events)) == 3


def test_manifest_digests_and_state_history(tmp_path: Path) -> None:
    rd = RunDirectory(tmp_path / "r1")
    rd.create()
    frontier = {"frontier": {"0": ["c1"]}, "best_scores": {"0": 1.0}}
    rd.write_document(
        rd.frontier,
        FrontierDoc.model_validate({**frontier, "best_candidate_id": "c1", "best_val_mean": 1.0}),
    )
    rd.events.write_bytes(b'{"seq":0}\n')
    (rd.root / ".frontier.json.x.tmp").write_bytes(b"{")
    history = StateHistory()
    history.enter("running", at="2025-01-01T00:00:00Z")
    history.enter("completed")
    manifest = Manifest(
        run_id="r1",
        state=history.current or "",
        started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:01:00Z",
        best_candidate=BestCandidate(id="c1"),
        state_history=history.changes,
    )
    written = write_manifest(rd.root, manifest)
    on_disk = orjson.loads(rd.manifest.read_bytes())
    assert on_disk == written.dump() and on_disk["state"] == "completed"
    assert read_document(rd.manifest, Manifest) == written
    assert [c["state"] for c in on_disk["state_history"]] == ["running", "completed"]
    assert set(on_disk["artifacts"]) == {"events.jsonl", "frontier.json"}
    assert on_disk["artifacts"]["events.jsonl"] == {
        "sha256": hashlib.sha256(b'{"seq":0}\n').hexdigest(),
        "bytes": 10,
    }
    again = StateHistory(written.state_history)
    assert again.current == "completed"
    assert "manifest.json" not in artifact_digests(rd.root)


def _register(runs_dir: str, worker: int) -> None:
    registry = RunRegistry(Path(runs_dir))
    for n in range(100):
        registry.record(
            f"w{worker}-{n}",
            Path(runs_dir) / f"w{worker}-{n}",
            state="running",
            started_at="2025-01-01T00:00:00Z",
            config=Path("/cfg/" + "x" * 300),
        )


def test_registry_concurrent_appends_and_latest_state(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_register, args=(str(tmp_path), n)) for n in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=30)
        assert process.exitcode == 0
    registry = RunRegistry(tmp_path)
    assert len(registry.history()) == 300
    registry.record("w0-0", tmp_path / "w0-0", state="completed", started_at="t")
    runs = registry.runs()
    assert len(runs) == 300 and runs["w0-0"].state == "completed"
    assert RunRegistry(tmp_path / "empty").runs() == {}


def test_run_lock_marks_live_and_crashed_runs(tmp_path: Path) -> None:
    assert lock_status(tmp_path) == "absent"
    lock = RunLock(tmp_path, "r1")
    info = lock.acquire()
    assert info.pid == os.getpid() and lock_status(tmp_path) == "alive"
    with pytest.raises(ResumeError, match="held by pid"):
        RunLock(tmp_path, "r1").acquire()
    lock.heartbeat()
    assert read_lock(tmp_path) is not None
    lock.release()
    assert lock_status(tmp_path) == "absent"

    # a crashed run: its pid no longer exists
    context = multiprocessing.get_context("fork")
    child = context.Process(target=RunLock(tmp_path, "r2").acquire)
    child.start()
    child.join(timeout=30)
    assert lock_status(tmp_path) == "stale"
    assert RunLock(tmp_path, "r3").acquire().run_id == "r3"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_run_that_died_but_was_not_yet_reaped_reads_as_crashed(tmp_path: Path) -> None:
    """Init can take seconds to reap a run whose parent died with it; kill(0) still
    finds such a zombie, but its run is over and may be resumed."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        RunLock(tmp_path, "r1").acquire()
        os._exit(0)
    os.close(write_end)
    try:
        os.read(read_end, 1)  # EOF: the child has exited; it stays a zombie until waited for
        deadline = time.monotonic() + 30
        while b") Z" not in Path(f"/proc/{pid}/stat").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock_status(tmp_path) == "stale"
        assert RunLock(tmp_path, "r2").acquire().run_id == "r2"
    finally:
        os.waitpid(pid, 0)
        os.close(read_end)
