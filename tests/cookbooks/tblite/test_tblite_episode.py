"""An episode: the transcript is the trace, the feedback names failed checks and the
last commands, and the `openai_chat` agent loop runs model commands in the sandbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tblite_task import SEED_PLAYBOOK
from tblite_task.chat import ChatSettings, parse_command
from tblite_task.episode import run_episode
from tblite_task.sandbox import Limits, SandboxViolation
from tblite_task.tasks import by_id


class Steps:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.checks = 0

    def step(self, **kw: Any) -> None:
        self.steps.append(kw)

    def check(self) -> None:
        self.checks += 1


def _model(answers: list[str], seen: list[list[dict[str, str]]]) -> httpx.AsyncClient:
    """A scripted OpenAI-compatible endpoint: one answer per call, with usage."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["messages"])
        answer = answers[min(len(seen) - 1, len(answers) - 1)]
        return httpx.Response(
            200,
            json={
                "choices": [{"message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 7},
            },
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


CHAT = ChatSettings(model="test-model", base_url="http://model.invalid/v1")


async def test_offline_feedback_names_failed_checks_and_last_commands() -> None:
    rec = Steps()
    task = by_id("text-warnings-sorted")
    result = await run_episode(SEED_PLAYBOOK, task.row_fields(), "offline", rec)
    assert not result.passed and result.reward == 0.0
    assert result.objectives == {"pass": 0.0, "checks": 0.0}
    feedback = result.feedback()
    assert "FAIL: 1 of 1 checks failed." in feedback
    assert "- warnings.txt holds the WARN lines in sorted order: warnings.txt: line 1" in feedback
    assert "Last commands:\n$ cat server.log | sort > warnings.txt  [exit 0]" in feedback
    # the trace is the command transcript
    assert [s["action"] for s in rec.steps] == ["cat server.log | sort > warnings.txt"]
    assert rec.checks >= 2
    assert result.transcript().startswith("$ cat server.log | sort > warnings.txt\n")


async def test_a_failing_command_shows_its_error_in_the_feedback() -> None:
    result = await run_episode(
        SEED_PLAYBOOK, by_id("text-find-the-log").row_fields(), "offline", Steps()
    )
    assert "cat: worker.log: No such file or directory" in result.feedback()
    assert "[exit 1]" in result.transcript()  # grep found nothing to pass on


async def test_openai_chat_runs_one_command_per_turn_until_done() -> None:
    seen: list[list[dict[str, str]]] = []
    answers = ["```sh\nls\n```", "grep -F ERROR app.log > errors.txt", "done"]
    async with _model(answers, seen) as client:
        rec = Steps()
        result = await run_episode(
            "You are a shell agent.",
            by_id("text-errors").row_fields(),
            "openai_chat",
            rec,
            chat=CHAT,
            http_client=client,
        )
    assert result.passed
    assert [s.command for s in result.steps] == ["ls", "grep -F ERROR app.log > errors.txt"]
    assert result.usage == {"prompt_tokens": 300, "completion_tokens": 21}
    assert seen[0][0] == {"role": "system", "content": "You are a shell agent."}
    assert "Put the lines of `app.log`" in seen[0][1]["content"]
    assert seen[1][-1]["content"] == "exit code 0\napp.log"
    assert result.notes == ["the model said done"]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("yes", "output_limit"), ("sleep 60", "timeout"), ("touch /etc/owned", "write_outside")],
)
async def test_a_model_command_that_breaks_a_limit_ends_the_episode(answer: str, kind: str) -> None:
    seen: list[list[dict[str, str]]] = []
    async with _model([answer], seen) as client:
        with pytest.raises(SandboxViolation) as info:
            await run_episode(
                "agent",
                by_id("text-errors").row_fields(),
                "openai_chat",
                Steps(),
                limits=Limits(command_seconds=1.0, max_output_bytes=10_000),
                chat=CHAT,
                http_client=client,
            )
    if kind == "write_outside" and info.value.kind == "timeout":
        pytest.skip("no namespace sandbox here")
    assert info.value.kind == kind


async def test_a_model_that_never_says_done_is_judged_after_its_last_command() -> None:
    async with _model(["true"], []) as client:
        result = await run_episode(
            "agent",
            by_id("text-errors").row_fields(),
            "openai_chat",
            Steps(),
            limits=Limits(max_commands=3),
            chat=CHAT,
            http_client=client,
        )
    assert [s.command for s in result.steps] == ["true"] * 3
    assert result.notes == ["the agent used all 3 commands"]
    assert not result.passed and result.reward == 0.0
    # the fourth answer asked for the command the limit refused: four calls, all counted
    assert result.usage == {"prompt_tokens": 400, "completion_tokens": 28}


def test_parse_command() -> None:
    assert parse_command("```bash\nls -la\n```") == "ls -la"
    assert parse_command("$ wc -l a.txt\nthat counts") == "wc -l a.txt"
    assert parse_command("Done.") is None
    assert parse_command("`cat x`") == "cat x"
