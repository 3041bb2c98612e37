"""The queue's semantics, one suite run against every backend (SQLite and PostgreSQL):
priority, leases renewed by heartbeat, expiry and requeue, one active run per container
and per cache namespace, controls, history, paging, worker presence, migrations."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from gepa_cli.service.errors import ConflictError, LeaseLostError, NotFoundError
from gepa_cli.service.migrations import MIGRATIONS
from gepa_cli.service.queue import Request, RunQueue


@pytest.fixture
def queue(queue_db: str) -> Iterator[RunQueue]:
    opened = RunQueue.open(queue_db)
    try:
        yield opened
    finally:
        opened.close()


def add(
    queue: RunQueue,
    name: str,
    *,
    namespace: str | None = None,
    container: str | None = None,
    priority: int = 0,
    client: str | None = None,
    auto_start: bool = True,
) -> Request:
    return queue.insert(
        run_id=name,
        config_path=Path(f"/tasks/{name}/gepa.toml"),
        base_dir=None,
        run_dir=Path(f"/runs/{name}"),
        container_key=container or f"app:{name}",
        namespace_key=namespace or f"ns:{name}",
        priority=priority,
        client=client,
        auto_start=auto_start,
    )


def test_claims_follow_priority_then_submission_order(queue: RunQueue) -> None:
    for name, priority in (("low", 0), ("high", 5), ("low2", 0), ("mid", 2)):
        add(queue, name, priority=priority)
    claimed = [queue.claim(f"w{i}", 30.0) for i in range(5)]
    assert [c.run_id if c else None for c in claimed] == ["high", "mid", "low", "low2", None]
    first = claimed[0]
    assert first is not None and first.status == "leased" and first.attempts == 1
    assert first.lease_owner == "w0" and 29.0 < (first.lease_remaining or 0) <= 30.0


def test_one_active_run_per_namespace_and_per_container(queue: RunQueue) -> None:
    add(queue, "a1", namespace="ns-a")
    add(queue, "a2", namespace="ns-a")
    add(queue, "u1", container="url:http://x")
    add(queue, "u2", container="url:http://x")
    add(queue, "free")
    got = [queue.claim(f"w{i}", 30.0) for i in range(4)]
    assert [g.run_id if g else None for g in got] == ["a1", "u1", "free", None]
    assert got[0] is not None and got[1] is not None
    queue.finish(got[0].request_id, "w0", "succeeded")
    # the namespace is free again; the container is still busy
    second = queue.claim("w5", 30.0)
    assert second is not None and second.run_id == "a2"
    assert queue.claim("w6", 30.0) is None


def test_concurrent_claimers_never_share_a_request_or_a_namespace(queue: RunQueue) -> None:
    for index in range(24):
        add(queue, f"r{index}", namespace=f"ns{index % 4}")
    held: dict[str, str] = {}  # namespace -> request id, while held
    lock = threading.Lock()
    problems: list[str] = []
    done: list[str] = []

    def worker(owner: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            request = queue.claim(owner, 30.0)
            if request is None:
                with lock:
                    if len(done) == 24:
                        return
                time.sleep(0.005)
                continue
            with lock:
                if request.namespace_key in held:
                    problems.append(f"{request.run_id} while {held[request.namespace_key]}")
                held[request.namespace_key] = request.run_id
            time.sleep(0.01)
            with lock:
                del held[request.namespace_key]
            queue.finish(request.request_id, owner, "succeeded")
            with lock:
                done.append(request.run_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert sorted(done) == sorted(f"r{i}" for i in range(24))
    assert queue.counts()["succeeded"] == 24
    leases = queue.history()
    assert len(leases) == 24 and {lease.outcome for lease in leases} == {"succeeded"}
    # and the recorded lease windows of one namespace never overlap
    by_namespace: dict[str, list[tuple[float, float]]] = {}
    for lease in leases:
        assert lease.ended_at is not None and lease.ended_at >= lease.claimed_at
        by_namespace.setdefault(lease.namespace_key, []).append((lease.claimed_at, lease.ended_at))
    for spans in by_namespace.values():
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in pairwise(spans))


def test_heartbeat_renews_the_lease_and_hands_over_controls(queue: RunQueue) -> None:
    request = add(queue, "r")
    claimed = queue.claim("w", 0.5)
    assert claimed is not None
    queue.mark_running(request.request_id, "w", 4242)
    for _ in range(4):
        time.sleep(0.2)
        assert queue.heartbeat(request.request_id, "w", 0.5) is None
        assert queue.requeue_expired() == []
    assert queue.get(request.request_id).status == "running"
    paused = queue.control(request.request_id, "pause", {"reason": "later"})
    assert paused.status == "running" and paused.control == "pause"
    assert queue.heartbeat(request.request_id, "w", 0.5) == "pause"
    with pytest.raises(LeaseLostError):
        queue.heartbeat(request.request_id, "someone-else", 0.5)


def test_an_expired_lease_is_requeued_and_its_history_says_so(queue: RunQueue) -> None:
    plain, cancelled, paused = add(queue, "plain"), add(queue, "cancel"), add(queue, "pause")
    for owner in ("w1", "w2", "w3"):
        assert queue.claim(owner, 0.3) is not None
    queue.control(cancelled.request_id, "cancel", {"reason": "x"})
    queue.control(paused.request_id, "pause", {})
    assert queue.requeue_expired() == []
    time.sleep(0.5)
    assert sorted(queue.requeue_expired()) == sorted(
        r.request_id for r in (plain, cancelled, paused)
    )
    # a pending control still wins over the requeue
    assert queue.get(plain.request_id).status == "queued"
    assert queue.get(cancelled.request_id).status == "cancelled"
    assert queue.get(paused.request_id).status == "paused"
    with pytest.raises(LeaseLostError):
        queue.finish(plain.request_id, "w1", "succeeded")
    again = queue.claim("w4", 30.0)
    assert again is not None and again.request_id == plain.request_id and again.attempts == 2
    queue.finish(again.request_id, "w4", "succeeded", manifest={"state": "finished"})
    history = queue.history(plain.run_id)
    assert [(h.attempt, h.owner, h.outcome) for h in history] == [
        (1, "w1", "expired"),
        (2, "w4", "succeeded"),
    ]
    assert history[0].ended_at is not None and history[0].ended_at <= history[1].claimed_at
    assert queue.get(plain.request_id).manifest == {"state": "finished"}


def test_controls_of_queued_held_active_and_finished_requests(queue: RunQueue) -> None:
    held = add(queue, "held", auto_start=False)
    assert held.status == "paused"
    assert queue.claim("w", 30.0) is None
    with pytest.raises(ConflictError):
        queue.control(held.request_id, "pause", {})
    assert queue.control(held.request_id, "resume", {}).status == "queued"
    with pytest.raises(ConflictError):
        queue.control(held.request_id, "resume", {})
    assert queue.control(held.request_id, "pause", {}).status == "paused"
    queue.control(held.request_id, "resume", {})

    waiting = add(queue, "waiting", namespace="ns:held")  # blocked behind "held"
    active = queue.claim("w", 30.0)
    assert active is not None and active.run_id == "held"
    cancelled = queue.control(waiting.run_id, "cancel", {"reason": "no"})
    assert cancelled.status == "cancelled" and cancelled.cancel == {"reason": "no"}
    assert cancelled.finished_at is not None
    with pytest.raises(ConflictError):
        queue.control(waiting.request_id, "cancel", {})
    stopping = queue.control(active.request_id, "cancel", {"reason": "stop"})
    assert stopping.status == "leased" and stopping.control == "cancel"
    with pytest.raises(ConflictError):
        queue.control(active.request_id, "pause", {})  # already being cancelled
    queue.finish(active.request_id, "w", "cancelled")
    done = queue.get(active.request_id)
    assert done.status == "cancelled" and done.control is None and done.lease_owner is None
    with pytest.raises(NotFoundError):
        queue.control("nope", "cancel", {})


def test_delete_only_finished_requests_with_their_history(queue: RunQueue) -> None:
    request = add(queue, "r")
    with pytest.raises(ConflictError):
        queue.delete(request.request_id)
    assert queue.claim("w", 30.0) is not None
    queue.finish(request.request_id, "w", "failed", error={"code": "x"})
    assert queue.get(request.request_id).error == {"code": "x"}
    assert queue.delete(request.run_id).request_id == request.request_id
    with pytest.raises(NotFoundError):
        queue.get(request.request_id)
    assert queue.history() == []
    with pytest.raises(ConflictError):
        add(queue, "dup")
        add(queue, "dup")


def test_pages_filter_by_status_and_client(queue: RunQueue) -> None:
    for index in range(7):
        add(queue, f"r{index}", client="alice" if index % 2 else "bob")
    add(queue, "held", client="alice", auto_start=False)
    page, total = queue.page(client="alice", limit=2, offset=1)
    assert total == 4 and [r.run_id for r in page] == ["r3", "r5"]
    page, total = queue.page(client="alice", status="paused")
    assert total == 1 and page[0].run_id == "held" and page[0].client == "alice"
    page, total = queue.page(limit=3, offset=6)
    assert total == 8 and [r.run_id for r in page] == ["r6", "held"]
    assert queue.page(client="carol") == ([], 0)
    assert queue.counts() == {
        "queued": 7, "leased": 0, "running": 0, "paused": 1,
        "succeeded": 0, "failed": 0, "cancelled": 0,
    }  # fmt: skip


def test_workers_are_seen_go_stale_and_are_forgotten(queue: RunQueue) -> None:
    registry = queue.workers
    registry.beat("a/1-0", "host-a", "idle", None)
    registry.beat("b/2-0", "host-b", "busy", "req-1")
    time.sleep(0.4)
    registry.beat("a/1-0", "host-a", "idle", None)
    workers = {w.worker_id: w for w in registry.list()}
    assert workers["b/2-0"].state == "busy" and workers["b/2-0"].request_id == "req-1"
    assert not workers["a/1-0"].stale(0.3) and workers["b/2-0"].stale(0.3)
    # a stale worker of this host whose process is gone is forgotten; another host's stays
    assert registry.forget_dead("host-b", lambda pid: False, 0.3) == 1
    assert [w.worker_id for w in registry.list()] == ["a/1-0"]
    registry.gone("a/1-0")
    assert registry.list() == []


def test_migrations_are_applied_once(queue_db: str) -> None:
    first = RunQueue.open(queue_db)
    second = RunQueue.open(queue_db)  # a second service on the same database
    try:
        with first.db.read() as tx:
            rows = tx.all("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in rows] == [m.version for m in MIGRATIONS]
        add(second, "r", client="c")
        assert first.get("r").client == "c"
    finally:
        first.close()
        second.close()
