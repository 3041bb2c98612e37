"""`events replay --check` on a session's directory: the rows its feed accounts for are
compared; a row after them is one in flight while a live process holds the session, and
a crash's uncommitted row otherwise."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from gepa_cli.artifacts import layout, read_jsonl, write_json_atomic
from gepa_cli.artifacts.replay import check_artifacts, replay_events
from online.support import UPSTREAM_KEY, UPSTREAM_KEY_ENV, chat, online_service, session_toml
from support.chat_upstream import ThreadServer


def _check(run_dir: Path) -> list[str]:
    return [d.line() for d in check_artifacts(replay_events(run_dir / layout.EVENTS)).disagreements]


def test_rows_after_the_feed_are_in_flight_only_while_the_session_is_held(
    tmp_path: Path, upstream: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    with online_service(tmp_path) as service:
        service.create(session_toml(upstream.url, "checked"))
        proxy = service.openai("checked")
        with service.control() as control:
            for i in range(3):
                rollout = chat(proxy, f"q{i}")[1]
                posted = control.post(
                    "/online/sessions/checked/rewards", json={"rollout_id": rollout, "reward": 1}
                )
                assert posted.status_code == 201
    run_dir = service.run_dir("checked")
    assert _check(run_dir) == []

    # a row without its event, as a process killed between the two writes leaves it
    for ledger in (layout.ROLLOUTS, layout.REWARDS):
        with open(run_dir / ledger, "ab") as handle:
            handle.write((run_dir / ledger).read_bytes().splitlines(keepends=True)[-1])
    assert _check(run_dir) == [
        "rollouts.jsonl uncommitted_rows: feed 0 vs artifact 1",
        "rewards.jsonl uncommitted_rows: feed 0 vs artifact 1",
    ]
    # the same rows while a live process holds the session: written after the feed was read
    lock = {"run_id": "checked", "pid": os.getpid(), "host": socket.gethostname()}
    write_json_atomic(run_dir / layout.LOCK, {**lock, "started_at": "", "heartbeat_at": ""})
    assert _check(run_dir) == []
    # but a row the feed accounts for must still agree with it
    rows = read_jsonl(run_dir / layout.REWARDS)
    (run_dir / layout.REWARDS).write_bytes(b"".join(
        f'{{"rollout_id": "{r["rollout_id"]}", "candidate_id": "c9999", "score": 1.0}}\n'.encode()
        for r in rows[:1]
    ))  # fmt: skip
    assert _check(run_dir) == [
        "rewards.jsonl rows_by_candidate.c0000: feed 3 vs artifact <absent>",
        "rewards.jsonl rows_by_candidate.c9999: feed <absent> vs artifact 1",
    ]
