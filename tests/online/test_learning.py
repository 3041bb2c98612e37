"""Learning: the statistical rule, promotion through real traffic, deterministic replay,
and a state rebuilt from the files alone."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.events import normalized_lines
from gepa_cli.artifacts.session_fold import RewardStats, SessionFold
from gepa_cli.online.config import OnlineSettings
from gepa_cli.online.policy import choose, compare, due_look, look_points, unit_draw
from gepa_cli.online.session import Session
from online.support import OnlineService, chat, online_service, session_toml
from support.chat_upstream import ThreadServer


def _stats(values: list[float]) -> RewardStats:
    stats = RewardStats()
    for value in values:
        stats.add(value, {})
    return stats


def test_looks_spend_at_most_alpha() -> None:
    settings = OnlineSettings(min_rewards=20, max_rewards=400, confidence=0.95)
    assert look_points(settings) == [20, 40, 80, 160, 320, 400]
    alphas = [
        compare("c1", _stats([0, 1] * 20), "c0", _stats([0, 1] * 20), look, settings).alpha
        for look in range(len(look_points(settings)))
    ]
    assert sum(alphas) <= 0.05 + 1e-12
    assert due_look(0, 19, settings) is None and due_look(0, 20, settings) == 0
    assert due_look(6, 10_000, settings) is None  # every look made


def test_decisions() -> None:
    settings = OnlineSettings(min_rewards=20, max_rewards=80)
    same = compare("c1", _stats([0, 1] * 20), "c0", _stats([1, 0] * 20), 0, settings)
    assert same.decision == "continue" and same.lower < 0 < same.upper
    better = compare(
        "c1", _stats([1] * 36 + [0] * 4), "c0", _stats([1] * 4 + [0] * 36), 1, settings
    )
    assert better.decision == "promote"
    worse = compare("c1", _stats([1] * 4 + [0] * 36), "c0", _stats([1] * 36 + [0] * 4), 1, settings)
    assert worse.decision == "retire_worse"
    last = compare("c1", _stats([0, 1] * 40), "c0", _stats([1, 0] * 40), 2, settings)
    assert last.decision == "retire_inconclusive"


def test_a_challenger_no_better_is_rarely_promoted() -> None:
    """Under the null (equal means), the sequential rule's promotions stay below alpha."""
    settings = OnlineSettings(min_rewards=20, max_rewards=320, confidence=0.9)
    rng = random.Random(7)
    promoted = 0
    trials = 300
    for _ in range(trials):
        challenger, incumbent = RewardStats(), RewardStats()
        looks = 0
        while True:
            challenger.add(float(rng.random() < 0.3), {})
            incumbent.add(float(rng.random() < 0.3), {})
            look = due_look(looks, challenger.n, settings)
            if look is None:
                continue
            looks += 1
            decision = compare("c1", challenger, "c0", incumbent, look, settings).decision
            if decision != "continue":
                promoted += decision == "promote"
                break
    assert promoted / trials <= 0.1 / 2 + 0.03  # one-sided half of alpha, plus noise


def test_routing_follows_the_shares_and_is_reproducible() -> None:
    shares = {"c0000": 0.7, "c0001": 0.3}
    picks = [choose(shares, unit_draw(3, serial)) for serial in range(2000)]
    assert picks == [choose(shares, unit_draw(3, serial)) for serial in range(2000)]
    assert 0.66 < picks.count("c0000") / 2000 < 0.74


def _drive(service: OnlineService, sid: str, calls: int) -> None:
    """Sequential calls; the seed earns 0, every proposal 1; learning settles each time."""
    client = service.openai(sid)
    with service.control() as control:
        for i in range(calls):
            _, rollout, candidate = chat(client, f"question {i % 7}")
            reward = 0.0 if candidate == "c0000" else 1.0
            answer = control.post(
                f"/online/sessions/{sid}/rewards",
                json={"rollout_id": rollout, "reward": reward, "feedback": f"{candidate} {reward}"},
            )
            assert answer.status_code == 201
            deadline = time.monotonic() + 30
            while control.get(f"/online/sessions/{sid}").json()["reflection_in_flight"]:
                assert time.monotonic() < deadline, "a reflection never finished"
                time.sleep(0.02)


def test_rewards_promote_a_better_candidate_and_replay_gives_the_same_feed(
    tmp_path: Path, upstream: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from online.support import UPSTREAM_KEY, UPSTREAM_KEY_ENV

    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    feeds = []
    for name in ("first", "second"):
        root = tmp_path / name
        root.mkdir()
        with online_service(root) as service:
            service.create(session_toml(upstream.url, "learn", gepa="max_proposals = 2"))
            _drive(service, "learn", 45)
            with service.control() as control:
                info = control.get("/online/sessions/learn").json()
                candidates = control.get("/online/sessions/learn/candidates").json()["candidates"]
        feeds.append(root / "runs" / "learn" / layout.EVENTS)
        assert info["incumbent_id"] != "c0000", info
        roles = {c["candidate_id"]: c["role"] for c in candidates}
        assert roles["c0000"] == "candidate" and info["proposals"] == 2
        promoted = next(c for c in candidates if c["candidate_id"] == info["incumbent_id"])
        assert promoted["mean"] == 1.0 and promoted["val_count"] >= 5
    first, second = ([line for _, line in normalized_lines(feed)] for feed in feeds)
    assert first == second

    # the state rebuilt from the files alone (the derived index deleted) is the same
    run_dir = feeds[0].parent
    index = tmp_path / "first" / "service-data" / "online" / "learn.index.sqlite"
    index.unlink()
    rebuilt = Session.open(run_dir, index)
    try:
        assert rebuilt.fold.summary() | {"state_history": None} == {
            **info_summary(info),
            "state_history": None,
        }
        assert [c.to_dict() for c in rebuilt.fold.candidates.values()] == [
            {k: c[k] for k in rebuilt.fold.candidates[c["candidate_id"]].to_dict()}
            for c in candidates
        ]
        assert len(rebuilt.index.latest_rewarded("c0000", 1000)) == candidates[0]["rewards"]
    finally:
        rebuilt.index.close()
        rebuilt.log.close()
        rebuilt.lock.release()


def info_summary(info: dict) -> dict:
    """The fold's part of a GET /online/sessions/{id} answer."""
    return {k: info[k] for k in SessionFold().summary()}
