"""The ``command`` backend: a local program reads the request on stdin, answers on stdout.

``input = "text"`` sends the rendered reflection prompt (for coding-agent CLIs or the
``llm`` tool); ``input = "json"`` sends one JSON object with the prompt, the candidate,
the component, the current text and the reflective dataset. The answer is read like a
chat answer: the text of its last complete fenced block.

A local program costs nothing this tool can meter, so the usage is zero tokens at a
known cost of 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from gepa_cli.config.models import ProposerConfig
from gepa_cli.engine.types import ProposalRequest, ProposalResult, Usage
from gepa_cli.errors import ConfigError, ProposerError
from gepa_cli.runtime.boundary import ResponseCache
from gepa_cli.runtime.proposers.prompt import parse_answer, records_as_json, render_prompt

BOUNDARY = "proposer.command"
PYTHON = "{python}"
_NAME_CHARS = 80
_REAP_SECONDS = 5.0
_STDERR_TAIL_LINES = 5
_STDERR_TAIL_CHARS = 400
_POSIX = os.name == "posix"


class CommandProposer:
    """Proposes by running a program once per request, in ``base_dir``."""

    def __init__(
        self,
        *,
        command: Sequence[str],
        cache: ResponseCache,
        template: str,
        base_dir: Path,
        input_mode: Literal["text", "json"] = "text",
        timeout_seconds: float = 120.0,
    ) -> None:
        if not command or not command[0].strip():
            raise ConfigError(
                "backend 'command' needs [proposer] command = [...] (the program to run)"
            )
        self.command = list(command)
        self.cache = cache
        self.template = template
        self.base_dir = base_dir
        self.input_mode = input_mode
        self.timeout_seconds = timeout_seconds

    @classmethod
    def from_config(
        cls, config: ProposerConfig, cache: ResponseCache, template: str, base_dir: Path
    ) -> CommandProposer:
        return cls(
            command=config.command or [],
            cache=cache,
            template=template,
            base_dir=base_dir,
            input_mode=config.input,
            timeout_seconds=config.timeout_seconds,
        )

    @property
    def display_name(self) -> str:
        """The command as configured, shortened, for error messages."""
        joined = shlex.join(self.command)
        return joined if len(joined) <= _NAME_CHARS else joined[: _NAME_CHARS - 3] + "..."

    @property
    def argv(self) -> list[str]:
        return [arg.replace(PYTHON, sys.executable) for arg in self.command]

    async def check(self) -> str:
        """Whether the program can be found (in the config's folder, or on PATH); it is
        not run, so nothing is spent."""
        program = self.argv[0]
        if os.sep in program or (os.altsep and os.altsep in program):
            path = Path(program) if Path(program).is_absolute() else self.base_dir / program
            found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
        else:
            found = shutil.which(program, path=os.environ.get("PATH"))
        if found is None:
            raise ProposerError(
                f"proposer command {self.display_name!r}: program {program!r} is not found "
                f"(looked {'in ' + str(self.base_dir) if os.sep in program else 'on PATH'})",
                hint="fix [proposer] command (a program on PATH, or a path relative to "
                "the config file; {python} is this interpreter)",
            )
        return f"found {found}"

    async def propose(self, request: ProposalRequest) -> ProposalResult:
        prompt = render_prompt(self.template, request.current_text, request.records)
        payload: str | dict[str, Any]
        if self.input_mode == "json":
            payload = {
                "prompt": prompt,
                "candidate": dict(request.candidate),
                "component": request.component,
                "current_text": request.current_text,
                "reflective_dataset": records_as_json(request.records),
            }
            stdin = json.dumps(payload, ensure_ascii=False)
        else:
            payload = stdin = prompt
        # the unresolved command keeps the key the same across machines and interpreters
        logical = {"command": self.command, "input": self.input_mode, "payload": payload}

        async def live() -> dict[str, Any]:
            return await self._run(stdin.encode("utf-8"))

        response, action = await self.cache.through(BOUNDARY, logical, live)
        answer = response.get("stdout")
        if not isinstance(answer, str):
            raise ProposerError(
                f"proposer command {self.display_name!r}: cached response has no stdout text",
                hint="delete the cache entry for boundary proposer.command and record again",
            )
        parsed = parse_answer(answer, request.current_text)
        return ProposalResult(
            new_text=parsed.new_text,
            rejection=parsed.rejection,
            usage=Usage(0, 0, 0.0, cost_known=True),
            prompt=prompt,
            raw_output=answer,
            meta={"cache_action": action},
        )

    async def _run(self, stdin: bytes) -> dict[str, Any]:
        argv = self.argv
        name = self.display_name
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.base_dir,
                # its own process group, so a timeout kills what it spawned as well
                start_new_session=_POSIX,
            )
        except OSError as exc:
            raise ProposerError(
                f"proposer command {name!r} cannot be started in {self.base_dir}: "
                f"{exc.strerror or exc}",
                hint="fix [proposer] command (a program on PATH, or a path relative to "
                "the config file; {python} is this interpreter)",
            ) from exc
        try:
            stdout, stderr = await asyncio.wait_for(
                _communicate(process, stdin), timeout=self.timeout_seconds
            )
        except asyncio.TimeoutError:
            await _kill(process)
            raise ProposerError(
                f"proposer command {name!r} timed out after {self.timeout_seconds:g} s",
                hint="raise [proposer] timeout_seconds or make the program answer sooner",
            ) from None
        except BaseException:
            # cancelled (Ctrl-C, run stopped): leave no orphan behind
            await _kill(process)
            raise
        if process.returncode != 0:
            raise ProposerError(
                f"proposer command {name!r} exited with status {process.returncode}: "
                f"{stderr_tail(stderr)}",
                hint="run the command by hand with the same input to see the full error",
            )
        return {"stdout": stdout.decode("utf-8", errors="replace")}


async def _communicate(process: asyncio.subprocess.Process, data: bytes) -> tuple[bytes, bytes]:
    """`Process.communicate`, but a program that exits without reading its input is
    judged by its status and stderr: under uvloop, writing to the closed pipe raises
    RuntimeError, which asyncio's own version does not expect."""
    assert process.stdin and process.stdout and process.stderr

    async def feed(stdin: asyncio.StreamWriter) -> None:
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except RuntimeError:
            if not stdin.is_closing():
                raise
        stdin.close()

    stdout, stderr, _ = await asyncio.gather(
        process.stdout.read(), process.stderr.read(), feed(process.stdin)
    )
    await process.wait()
    return stdout, stderr


async def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        if _POSIX:
            # the whole group, even when the child itself has exited: a grandchild that
            # still holds stdout open is what kept us waiting
            os.killpg(process.pid, signal.SIGKILL)
        elif process.returncode is None:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    # reap it, so the child is gone rather than a zombie. asyncio's wait() also waits for
    # the pipes to close, which a grandchild that left the group (setsid) could hold open
    # for ever; the bound keeps a stuck run moving at the price of a lingering process.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(process.wait(), timeout=_REAP_SECONDS)


def stderr_tail(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines()]
    tail = " | ".join([line for line in lines if line][-_STDERR_TAIL_LINES:])
    if len(tail) > _STDERR_TAIL_CHARS:
        tail = "..." + tail[-_STDERR_TAIL_CHARS:]
    return tail or "(no stderr)"
