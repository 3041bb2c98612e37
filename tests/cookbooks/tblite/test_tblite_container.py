"""The container on the task-app kit: contract routes, and a rollout whose agent breaks
a sandbox limit ends as ``failed`` with the reason."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("gepa_cli.taskapp", reason="the task-app kit is not installed")

from starlette.testclient import TestClient
from tblite_task import SEED_PLAYBOOK
from tblite_task.container import app
from tblite_task.sandbox import isolation_level
from tblite_task.tasks import split_tasks


@pytest.fixture(scope="module")
def client() -> Any:
    with TestClient(app) as c:
        yield c


def _rollout(client: Any, playbook: str, task_id: str, **policy: Any) -> dict[str, Any]:
    body = {
        "candidate": {"system_prompt": playbook},
        "policy": {"backend": "offline", **policy},
        "dataset_row": {"task_id": task_id},
        "metadata": {"candidate_id": "c0000"},
    }
    response = client.post("/rollout", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_program_and_dataset(client: Any) -> None:
    program = client.get("/program").json()
    assert program["seed_candidate"] == {"system_prompt": SEED_PLAYBOOK}
    sizes = client.get("/dataset").json()["splits"]
    assert {k: v["size"] for k, v in sizes.items()} == {
        s: len(split_tasks(s)) for s in ("train", "val", "heldout")
    }
    rows = client.post("/dataset/rows", json={"split": "val", "seeds": [0, 1]}).json()["rows"]
    assert [r["task_id"] for r in rows] == [t.task_id for t in split_tasks("val")[:2]]
    assert set(rows[0]) >= {"example_id", "task_id", "category", "instruction"}
    assert "solution" not in rows[0] and "checks" not in rows[0]


def test_a_rollout_returns_reward_feedback_transcript_and_trace(client: Any) -> None:
    result = _rollout(client, SEED_PLAYBOOK, "text-errors")
    assert result["status"] == "completed"
    info = result["reward_info"]
    assert info["outcome_reward"] == 1.0 and info["objectives"] == {"pass": 1.0, "checks": 1.0}
    assert info["feedback"].startswith("PASS")
    assert result["output"].startswith("$ cat app.log | grep -F -- ERROR > errors.txt")
    steps = result["trace"]["steps"] if isinstance(result["trace"], dict) else result["trace"]
    assert [s["action"] for s in steps] == ["cat app.log | grep -F -- ERROR > errors.txt"]


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("yes", "output_limit"),
        ("sleep 600", "timeout"),
        (":(){ :|:& };:", "process_limit"),
        ("echo owned > /etc/tblite-owned", "write_outside"),
    ],
)
def test_a_command_that_breaks_a_limit_fails_the_rollout(
    client: Any, command: str, reason: str
) -> None:
    if reason in ("process_limit", "write_outside") and isolation_level() != "namespaces":
        pytest.skip("this machine cannot run the namespace sandbox")
    playbook = SEED_PLAYBOOK + f'\n- "containing" -> run: {command}\n'
    # only the timeout case waits for the per-command limit; the others must hit their
    # own limit long before it, even on a busy machine
    seconds = 1 if reason == "timeout" else 20
    params = {
        "sandbox": {"command_seconds": seconds, "max_output_bytes": 10000, "max_processes": 32}
    }
    result = _rollout(
        client, playbook.replace('- "containing" -> filter', "- x"), "text-errors", params=params
    )
    assert result["status"] == "failed"
    assert f"sandbox {reason}" in result["error"], result["error"]


def test_bad_sandbox_limits_fail_the_rollout_with_a_clear_reason(client: Any) -> None:
    result = _rollout(client, SEED_PLAYBOOK, "text-errors", params={"sandbox": {"cpu": 1}})
    assert result["status"] == "failed" and "unknown sandbox limit 'cpu'" in result["error"]


def test_model_commands_need_the_namespace_sandbox(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TBLITE_SANDBOX", "processes")
    policy = {"backend": "openai_chat", "model": "m", "base_url": "http://model.invalid/v1"}
    body = {
        "candidate": {"system_prompt": "agent"},
        "policy": policy,
        "dataset_row": {"task_id": "text-errors"},
    }
    result = client.post("/rollout", json=body).json()
    assert result["status"] == "failed" and "needs the namespace sandbox" in result["error"]


def test_an_unreachable_model_is_a_transient_error(client: Any) -> None:
    if isolation_level() != "namespaces":
        pytest.skip("this machine cannot run the namespace sandbox")
    policy = {"backend": "openai_chat", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    body = {
        "candidate": {"system_prompt": "agent"},
        "policy": policy,
        "dataset_row": {"task_id": "text-errors"},
    }
    response = client.post("/rollout", json=body)
    assert response.status_code in (502, 503), response.text
