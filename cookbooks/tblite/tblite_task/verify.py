"""The verifier: runs a task's checks in the episode's workspace, after the agent.

File checks read the workspace from the host (never following a link out of it);
``run`` checks execute in the same sandbox, outside the agent's command budget. The
verdict lists every check with why it failed.

    python -m tblite_task.verify TASK_ID [--solution | --dir DIR] [--json]

runs the verifier on the untouched starting workspace (the default), on the workspace
after the reference solution, or on a copy of DIR, and exits 0 when every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .sandbox import Limits, Sandbox, SandboxViolation
from .tasks import Check, Task, by_id

MAX_READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def fraction(self) -> float:
        return sum(c.passed for c in self.checks) / len(self.checks)


def _inside(workspace: Path, rel: str) -> Path | None:
    """The path of ``rel`` if it (and every link on the way) stays in the workspace."""
    root = workspace.resolve()
    path = (workspace / rel).resolve()
    return path if path == root or root in path.parents else None


def _read(workspace: Path, rel: str) -> tuple[str | None, str]:
    path = _inside(workspace, rel)
    if path is None:
        return None, f"{rel} is a link that leads outside the workspace"
    if not path.is_file():
        return None, f"{rel} does not exist" if not path.exists() else f"{rel} is not a file"
    with path.open("rb") as fh:
        data = fh.read(MAX_READ_BYTES + 1)
    if len(data) > MAX_READ_BYTES:
        return None, f"{rel} is larger than {MAX_READ_BYTES} bytes"
    return data.decode("utf-8", errors="replace"), ""


def _lines(text: str) -> list[str]:
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def compare_text(found: str, expected: str, unordered: bool = False, what: str = "") -> str:
    """'' when equal (a final newline may be missing on either side), else what differs."""
    want, got = _lines(expected), _lines(found)
    if found == "":
        got = []
    if expected == "":
        want = []
    if unordered:
        want, got = sorted(want), sorted(got)
    if want == got:
        return ""
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        if w != g:
            return (
                f"{what}line {i + 1} is {g[:80]!r}, expected {w[:80]!r} "
                f"({len(got)} lines, expected {len(want)})"
            )
    if len(got) < len(want):
        return f"{what}{len(got)} lines, expected {len(want)}; missing {want[len(got)][:80]!r}"
    return f"{what}{len(got)} lines, expected {len(want)}; unexpected {got[len(want)][:80]!r}"


async def run_check(check: Check, task: Task, box: Sandbox) -> CheckResult:
    ws = box.workspace
    if check.kind in ("file", "unchanged"):
        text, why = _read(ws, check.path)
        if text is None:
            return CheckResult(check.name, False, why)
        expected = task.files[check.path] if check.kind == "unchanged" else check.equals or ""
        diff = compare_text(text, expected, check.unordered, f"{check.path}: ")
        if check.kind == "unchanged" and diff:
            diff = f"{check.path} was changed, it must stay as it was ({diff})"
        return CheckResult(check.name, not diff, diff)
    if check.kind in ("exists", "absent", "executable"):
        path = _inside(ws, check.path)
        exists = path is not None and (path.exists() or path.is_symlink())
        if check.kind == "absent":
            return CheckResult(
                check.name, not exists, f"{check.path} still exists" if exists else ""
            )
        if not exists or path is None:
            return CheckResult(check.name, False, f"{check.path} does not exist")
        if check.kind == "executable":
            ok = path.is_file() and bool(os.stat(path).st_mode & stat.S_IXUSR)
            return CheckResult(check.name, ok, "" if ok else f"{check.path} is not executable")
        return CheckResult(check.name, True)
    try:
        result = await box.run(check.command, agent=False)
    except SandboxViolation as exc:
        return CheckResult(check.name, False, f"`{check.command}` was stopped: {exc.detail}")
    problems = []
    if check.exit_code is not None and result.exit_code != check.exit_code:
        tail = result.output.strip().splitlines()[-1:] or [""]
        problems.append(
            f"`{check.command}` exited {result.exit_code}, expected {check.exit_code}"
            + (f" (last line: {tail[0][:100]!r})" if tail[0] else "")
        )
    if check.output is not None:
        diff = compare_text(result.output.rstrip("\n"), check.output.rstrip("\n"), check.unordered)
        if diff:
            problems.append(f"`{check.command}` printed: {diff}")
    return CheckResult(check.name, not problems, "; ".join(problems))


async def verify(task: Task, box: Sandbox) -> Verdict:
    return Verdict(tuple([await run_check(c, task, box) for c in task.checks]))


async def _main_async(args: argparse.Namespace) -> Verdict:
    task = by_id(args.task_id)
    files: dict[str, str | bytes] = dict(task.files)
    executable = task.executable
    if args.dir:
        root = Path(args.dir)
        files = {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }
        executable = tuple(k for k in files if os.access(root / k, os.X_OK))
    async with Sandbox(files, Limits(), executable) as box:
        if args.solution:
            result = await box.run(task.solution, agent=False)
            if result.exit_code != 0:
                print(f"the reference solution exited {result.exit_code}:", file=sys.stderr)
                print(result.output, file=sys.stderr)
        return await verify(task, box)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tblite_task.verify")
    parser.add_argument("task_id")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--solution", action="store_true", help="after the reference solution")
    group.add_argument("--dir", help="verify a copy of this folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        verdict = asyncio.run(_main_async(args))
    except KeyError:
        print(f"error: no task {args.task_id!r}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"passed": verdict.passed, "checks": [asdict(c) for c in verdict.checks]}))
    else:
        for c in verdict.checks:
            print(
                f"{'PASS' if c.passed else 'FAIL'} {c.name}" + (f": {c.detail}" if c.detail else "")
            )
        print("passed" if verdict.passed else f"failed: {len(verdict.failed)} check(s)")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
