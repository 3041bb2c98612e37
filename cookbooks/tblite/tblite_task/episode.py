"""One rollout: a fresh sandbox, the agent's commands, the verifier, the feedback.

`run_episode` is what the container's rollout calls; it is plain async code over the
candidate's playbook, the dataset row and the policy settings, with a step recorder
(the kit's `Rollout`, or any object with ``step`` and ``check``) receiving the command
transcript. A broken sandbox limit raises `SandboxViolation`: the rollout fails with
its reason. The sandbox (and its directory) is gone when this returns, whatever happens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .agent import offline_agent
from .chat import ChatSettings, chat_agent
from .sandbox import COMMAND_LIMIT, CommandResult, Limits, Sandbox, SandboxViolation
from .tasks import Task, by_id
from .verify import Verdict, verify

BACKENDS = ("offline", "openai_chat")
SHOWN_OUTPUT_LINES = 12
SHOWN_OUTPUT_CHARS = 1200
LAST_COMMANDS = 3
# Timings that test runners and tools print would make transcripts differ run to run.
_VOLATILE = [(re.compile(r"\b(Ran \d+ tests? in )[\d.]+s\b"), r"\1<t>s")]


class Recorder(Protocol):
    def step(
        self,
        *,
        observation: Any = None,
        action: Any = None,
        reward: float = 0.0,
        messages: Any = None,
        info: Any = None,
    ) -> None: ...

    def check(self) -> None: ...


@dataclass
class Step:
    command: str
    exit_code: int
    output: str


@dataclass
class EpisodeResult:
    task: Task
    verdict: Verdict
    steps: list[Step]
    notes: list[str]
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def reward(self) -> float:
        return 1.0 if self.verdict.passed else 0.0

    @property
    def objectives(self) -> dict[str, float]:
        return {"pass": self.reward, "checks": round(self.verdict.fraction, 6)}

    def transcript(self) -> str:
        """The command transcript as the proposer sees it (outputs shortened)."""
        lines = []
        for step in self.steps:
            lines.append(f"$ {step.command}")
            lines.extend(f"  {x}" for x in shorten(step.output).splitlines())
            lines.append(f"  [exit {step.exit_code}]")
        lines.extend(f"# agent: {n}" for n in self.notes)
        if not self.steps:
            lines.append("# agent ran no command")
        return "\n".join(lines)

    def feedback(self) -> str:
        v = self.verdict
        if v.passed:
            head = f"PASS: all {len(v.checks)} checks passed after {len(self.steps)} command(s)."
        else:
            head = f"FAIL: {len(v.failed)} of {len(v.checks)} checks failed."
        parts = [head]
        if v.failed:
            parts.append("Failed checks:")
            parts.extend(f"- {c.name}: {c.detail}" for c in v.failed)
        if self.steps:
            parts.append("Last commands:")
            for step in self.steps[-LAST_COMMANDS:]:
                parts.append(f"$ {step.command}  [exit {step.exit_code}]")
                if step.exit_code != 0 and step.output.strip():
                    parts.append("  " + step.output.strip().splitlines()[-1][:200])
        else:
            parts.append("The agent ran no command.")
        parts.extend(f"Agent: {n}" for n in self.notes)
        return "\n".join(parts)


def shorten(text: str) -> str:
    lines = text.splitlines()
    if len(lines) > SHOWN_OUTPUT_LINES:
        lines = [*lines[:SHOWN_OUTPUT_LINES], f"... ({len(lines) - SHOWN_OUTPUT_LINES} more lines)"]
    out = "\n".join(lines)
    return out if len(out) <= SHOWN_OUTPUT_CHARS else out[:SHOWN_OUTPUT_CHARS] + " ..."


def scrub(text: str) -> str:
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text


def task_of(row: Mapping[str, Any]) -> Task:
    task_id = row.get("task_id")
    if not isinstance(task_id, str):
        raise ValueError("the dataset row has no 'task_id'")
    try:
        return by_id(task_id)
    except KeyError:
        raise ValueError(f"unknown task_id {task_id!r}") from None


async def run_episode(
    playbook: str,
    row: Mapping[str, Any],
    backend: str,
    recorder: Recorder,
    limits: Limits | None = None,
    chat: ChatSettings | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> EpisodeResult:
    if backend not in BACKENDS:
        raise ValueError(f"policy.backend {backend!r}; use one of {BACKENDS}")
    task = task_of(row)
    steps: list[Step] = []
    notes: list[str] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    async with Sandbox(task.files, limits, task.executable) as box:

        async def run(command: str) -> CommandResult:
            recorder.check()
            result = await box.run(command)
            result = CommandResult(result.command, result.exit_code, scrub(result.output))
            steps.append(Step(command, result.exit_code, result.output))
            recorder.step(
                observation=shorten(result.output),
                action=command,
                info={"exit_code": result.exit_code},
            )
            return result

        if backend == "openai_chat" and chat is None:
            raise ValueError("openai_chat needs policy settings (model, base_url)")
        try:
            if backend == "offline":
                await offline_agent(playbook, task.instruction, run, notes.append)
            else:
                assert chat is not None
                await chat_agent(
                    playbook, task.instruction, run, notes.append, chat, usage, http_client
                )
        except SandboxViolation as exc:
            if exc.kind != COMMAND_LIMIT:
                raise
            # running out of commands is how the agent did, not a fault of the sandbox:
            # the verifier judges the workspace as it is, and the episode's model calls
            # stay recorded (a failed rollout would carry no usage and never be cached)
            notes.append(f"the agent used all {box.limits.max_commands} commands")
        recorder.check()
        verdict = await verify(task, box)
    return EpisodeResult(task, verdict, steps, notes, usage)
