"""`gepa-cli show`, `diff` and `report` on an online session's run directory: a session
is a run directory too, read through the same replay (docs/online.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from gepa_cli.artifacts import read_jsonl
from gepa_cli.view import RunView
from gepa_cli.view.page import ReportBuilder
from online.support import UPSTREAM_KEY, UPSTREAM_KEY_ENV, chat, online_service, session_toml
from service.support import free_port
from support.chat_upstream import ThreadServer
from support.chat_upstream import app as upstream_app
from support.cli import run_cli

SEED_TEXT = "You are a helpful assistant."


@dataclass
class Session:
    path: Path
    prompt: dict[str, Any]  # GET .../prompt before the service let go of it

    def ledger(self, name: str) -> list[dict[str, Any]]:
        return read_jsonl(self.path / name)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """A session whose first challenger (the seed plus " Answer briefly.") earns every
    reward the seed does not, so it is promoted; its own challenger is still compared
    when the service stops."""
    root = tmp_path_factory.mktemp("session-view")
    before = os.environ.get(UPSTREAM_KEY_ENV)
    os.environ[UPSTREAM_KEY_ENV] = UPSTREAM_KEY
    upstream = ThreadServer(upstream_app, free_port()).start()
    try:
        with online_service(root) as service:
            service.create(session_toml(upstream.url, "viewed", online={"explore_share": 0.5}))
            proxy = service.openai("viewed")
            with service.control() as control:
                for i in range(60):
                    answer, rollout, _ = chat(proxy, f"question {i}")
                    reward = 1.0 if "Answer briefly." in answer else 0.0
                    posted = control.post(
                        "/online/sessions/viewed/rewards",
                        json={"rollout_id": rollout, "reward": reward, "feedback": "brief?"},
                    )
                    assert posted.status_code == 201, posted.text
                prompt = control.get("/online/sessions/viewed/prompt").json()
        yield Session(root / "runs" / "viewed", prompt)
    finally:
        upstream.stop()
        if before is None:
            os.environ.pop(UPSTREAM_KEY_ENV, None)
        else:
            os.environ[UPSTREAM_KEY_ENV] = before


def test_show_and_diff_of_a_session(session: Session) -> None:
    assert session.prompt["candidate_id"] != "c0000"  # a challenger was promoted
    best_text = session.prompt["texts"]["system_prompt"]
    shown = run_cli("show", str(session.path))
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout_bytes == best_text.encode("utf-8")
    assert run_cli("show", str(session.path), "seed").stdout_bytes == SEED_TEXT.encode()

    facts = orjson.loads(run_cli("show", str(session.path), "--json").stdout_bytes)
    rows = {row["candidate_id"]: row for row in session.ledger("candidates.jsonl")}
    best = rows[session.prompt["candidate_id"]]
    assert facts["candidate_id"] == best["candidate_id"] and "best" in facts["roles"]
    # a session's "validation" is the reward evidence recorded when the candidate was decided
    assert (facts["val_mean"], facts["val_count"]) == (best["val_mean"], best["val_count"])
    assert [c["candidate_id"] for c in facts["lineage"]] == ["c0000", best["candidate_id"]]

    diff = run_cli("diff", str(session.path))
    assert diff.exit_code == 1  # seed and best differ
    assert "+You are a helpful assistant. Answer briefly." in diff.stdout


def test_report_of_a_session(session: Session, tmp_path: Path) -> None:
    html = tmp_path / "session.html"
    written = run_cli("report", str(session.path), "-o", str(html))
    assert written.exit_code == 0, written.stderr
    assert "viewed" in html.read_text(encoding="utf-8")

    built = ReportBuilder([RunView.load(session.path)]).build()
    [run] = built["runs"]
    figures = built["figures"]
    served = len(session.ledger("rollouts.jsonl"))
    assert dict(run["summary"])["rollouts"].startswith(str(served))
    # the score plot: every decided candidate at its reward mean, at the rollouts served
    # when it was decided, and the best's line running to the last rollout
    rows = {r["candidate_id"]: r for r in session.ledger("candidates.jsonl")}
    score = {t["meta"]: t for t in figures["r0-score"]["data"]}
    assert sorted(score["candidates"]["text"]) == sorted(rows)
    assert score["candidates"]["y"] == pytest.approx(
        [rows[cid]["val_mean"] for cid in score["candidates"]["text"]]
    )
    assert all(0 < x < served for x in score["candidates"]["x"])
    assert score["best_val"]["x"][-1] == served
    assert score["best_val"]["y"][-1] == pytest.approx(
        rows[session.prompt["candidate_id"]]["val_mean"]
    )
    # every proposal became a challenger; the promoted one says why, from its comparison
    proposals = {p["id"]: p for p in run["proposals"]}
    assert {p["kind"] for p in proposals.values()} == {"accepted"}
    promoted = next(
        p for p in proposals.values() if p["candidate_id"] == session.prompt["candidate_id"]
    )
    assert promoted["why"].endswith("-> promote") and "vs c0000" in promoted["why"]
