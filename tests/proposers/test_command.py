"""The command backend, running small Python programs written to tmp_path."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gepa_cli.config.models import ProposerConfig
from gepa_cli.errors import ProposerError
from gepa_cli.runtime.boundary import NoCache
from gepa_cli.runtime.proposers import build_proposer
from gepa_cli.runtime.proposers.command import CommandProposer, _communicate
from support.memory_cache import MemoryCache

from .support import CURRENT, make_request

# echoes stdin to a file and answers with a fenced block naming where it ran
TEXT_PROGRAM = """\
import os, sys
data = sys.stdin.read()
open("stdin.txt", "w", encoding="utf-8").write(data)
print("Here is the revision:")
print("```text")
print("Revised in " + os.path.basename(os.getcwd()) + ".")
print("```")
"""

JSON_PROGRAM = """\
import json, sys
request = json.load(sys.stdin)
json.dump(request, open("request.json", "w", encoding="utf-8"))
worst = min(request["reflective_dataset"], key=lambda record: record["score"])
print("```")
print(request["current_text"] + " Note: " + worst["feedback"])
print("```")
"""

FAILING_PROGRAM = """\
import sys
sys.stdin.read()
for number in range(20):
    print(f"noise line {number}", file=sys.stderr)
print("ValueError: the model name is unknown", file=sys.stderr)
sys.exit(3)
"""

# the child writes its pid and its own child's pid, then outlives any test timeout; the
# grandchild lets go of the pipes, so only a kill of the whole group can stop it
SLEEPING_PROGRAM = """\
import subprocess, sys, time
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
with open("pids.tmp", "w") as handle:
    handle.write(f"{__import__('os').getpid()} {grandchild.pid}")
__import__("os").replace("pids.tmp", "pids.txt")
time.sleep(60)
"""


def write(base: Path, name: str, source: str) -> Path:
    path = base / name
    path.write_text(source, encoding="utf-8")
    return path


def command_config(script: str, **overrides: Any) -> ProposerConfig:
    fields: dict[str, Any] = {
        "backend": "command",
        "command": ["{python}", script],
        "timeout_seconds": 20,
    }
    fields.update(overrides)
    return ProposerConfig(**fields)


async def test_text_input_gets_the_prompt_and_runs_in_base_dir(tmp_path: Path) -> None:
    base = tmp_path / "task-dir"
    base.mkdir()
    write(base, "propose.py", TEXT_PROGRAM)
    proposer = build_proposer(command_config("propose.py"), NoCache(), base)
    result = await proposer.propose(make_request())

    assert (result.new_text, result.rejection) == ("Revised in task-dir.", None)
    assert (base / "stdin.txt").read_text(encoding="utf-8") == result.prompt
    assert CURRENT in result.prompt
    assert result.raw_output.startswith("Here is the revision:")
    assert result.usage.total_tokens == 0
    assert result.usage.cost_known and result.usage.cost_usd == 0.0


async def test_json_input_carries_the_reflective_dataset(tmp_path: Path) -> None:
    write(tmp_path, "propose.py", JSON_PROGRAM)
    proposer = build_proposer(command_config("propose.py", input="json"), NoCache(), tmp_path)
    result = await proposer.propose(make_request())

    assert result.new_text == f"{CURRENT} Note: Wrong: expected transfer_into_account."
    sent = json.loads((tmp_path / "request.json").read_text(encoding="utf-8"))
    assert set(sent) == {
        "prompt",
        "candidate",
        "component",
        "current_text",
        "reflective_dataset",
    }
    assert sent["prompt"] == result.prompt
    assert sent["component"] == "system_prompt"
    assert sent["candidate"] == {"system_prompt": CURRENT, "format": "Answer with the label."}
    assert sent["reflective_dataset"][1] == {
        "example_id": "train-7",
        "inputs": {"text": "How do I top up by bank transfer?"},
        "output": {"label": "top_up_failed"},
        "score": 0.0,
        "feedback": "Wrong: expected transfer_into_account.",
    }


async def test_unchanged_answer_is_rejected(tmp_path: Path) -> None:
    answer = json.dumps(f"```\n{CURRENT}\n```")
    write(tmp_path, "same.py", f"import sys\nsys.stdin.read()\nprint({answer})\n")
    proposer = build_proposer(command_config("same.py"), NoCache(), tmp_path)
    result = await proposer.propose(make_request())
    assert (result.new_text, result.rejection) == (None, "unchanged")


async def test_nonzero_exit_is_a_proposer_error_with_the_stderr_tail(tmp_path: Path) -> None:
    write(tmp_path, "fail.py", FAILING_PROGRAM)
    cache = MemoryCache()
    proposer = build_proposer(command_config("fail.py"), cache, tmp_path)
    with pytest.raises(ProposerError) as caught:
        await proposer.propose(make_request())
    message = str(caught.value)
    assert "exited with status 3" in message
    assert "ValueError: the model name is unknown" in message
    assert "noise line 19" in message and "noise line 0 " not in message
    assert "\n" not in message
    assert cache.entries == {}


async def test_timeout_kills_the_child_and_its_children(tmp_path: Path) -> None:
    write(tmp_path, "sleep.py", SLEEPING_PROGRAM)
    proposer = build_proposer(command_config("sleep.py", timeout_seconds=1.5), NoCache(), tmp_path)
    with pytest.raises(ProposerError, match=r"timed out after 1\.5 s"):
        await proposer.propose(make_request())
    child, grandchild = (int(pid) for pid in (tmp_path / "pids.txt").read_text().split())
    try:
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)  # reaped, not a zombie
        assert gone_soon(grandchild)
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def gone_soon(pid: int) -> bool:
    """Whether ``pid`` dies within a few seconds (a SIGKILL lands asynchronously)."""
    for _ in range(200):
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie awaiting its (new) parent counts as gone."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and sys.platform.startswith("linux"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_missing_program_is_a_proposer_error(tmp_path: Path) -> None:
    config = ProposerConfig(backend="command", command=["./no-such-proposer"])
    with pytest.raises(ProposerError, match=r"'\./no-such-proposer' cannot be started in "):
        await build_proposer(config, NoCache(), tmp_path).propose(make_request())


async def test_cache_key_keeps_python_unresolved(tmp_path: Path) -> None:
    write(tmp_path, "propose.py", TEXT_PROGRAM)
    cache = MemoryCache()
    proposer = CommandProposer(
        command=["{python}", "propose.py"],
        cache=cache,
        template="{current_text}\n{examples}",
        base_dir=tmp_path,
    )
    first = await proposer.propose(make_request())
    (tmp_path / "stdin.txt").unlink()
    second = await proposer.propose(make_request())
    assert replace(second, meta={}) == replace(first, meta={})
    assert (first.meta, second.meta) == ({"cache_action": "write"}, {"cache_action": "hit"})
    assert not (tmp_path / "stdin.txt").exists()  # served from the cache: not run again
    [(boundary, logical), _] = cache.calls
    assert boundary == "proposer.command"
    assert logical == {
        "command": ["{python}", "propose.py"],
        "input": "text",
        "payload": first.prompt,
    }
    assert sys.executable not in json.dumps(logical)


def test_a_program_that_exits_without_reading_its_input_is_judged_by_its_status() -> None:
    """Under uvloop (the service's loop) the child's stdin pipe is closed as soon as it
    exits, and writing to it raised RuntimeError instead of the usual BrokenPipeError."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[bytes, bytes, int | None]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; sys.exit('the proposer is broken')",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await process.wait()
        assert process.stdin is not None
        for _ in range(500):
            if process.stdin.is_closing():
                break
            await asyncio.sleep(0.01)
        stdout, stderr = await _communicate(process, b"x" * 100_000)
        return stdout, stderr, process.returncode

    stdout, stderr, code = uvloop.run(scenario())
    assert (stdout, stderr.strip(), code) == (b"", b"the proposer is broken", 1)
