"""The task suite: one TOML file per task in ``tasks/``.

A task file holds the instruction, its category and split, the starting workspace
(``[files]``, with ``executable`` naming the files that start executable), the verifier's
checks (``[[checks]]``, run by `verify.py`) and a reference solution (``solution``, a
shell script run in the sandbox by the tests). Splits are by task: every task belongs to
exactly one of train, val and heldout, and the rows of a split are its tasks in id order.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TASK_DIR = Path(__file__).with_name("tasks")
SPLITS = ("train", "val", "heldout")
CATEGORIES = ("text", "files", "code", "data", "scripting")
CHECK_KINDS = ("file", "absent", "exists", "executable", "unchanged", "run")


class TaskError(ValueError):
    """A task file is malformed: names the file and the field."""


@dataclass(frozen=True)
class Check:
    name: str
    kind: str
    path: str = ""
    equals: str | None = None
    command: str = ""
    output: str | None = None
    exit_code: int | None = 0
    unordered: bool = False


@dataclass(frozen=True)
class Task:
    task_id: str
    category: str
    split: str
    instruction: str
    files: Mapping[str, str]
    executable: tuple[str, ...]
    checks: tuple[Check, ...]
    solution: str
    source: Path = field(compare=False)

    def row_fields(self) -> dict[str, Any]:
        """What the optimizer and the agent may see: never the checks or the solution."""
        return {"task_id": self.task_id, "category": self.category, "instruction": self.instruction}


def _req(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise TaskError(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def parse_task(path: Path) -> Task:
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskError(f"{where}: not valid TOML: {exc}") from exc
    known = {"category", "split", "instruction", "files", "executable", "checks", "solution"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TaskError(f"{where}: unknown key {unknown[0]!r}; known: {sorted(known)}")
    category = _req(data, "category", str, where)
    if category not in CATEGORIES:
        raise TaskError(f"{where}: category {category!r}; use one of {CATEGORIES}")
    split = _req(data, "split", str, where)
    if split not in SPLITS:
        raise TaskError(f"{where}: split {split!r}; use one of {SPLITS}")
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise TaskError(f"{where}: [files] must map relative paths to text")
    executable = data.get("executable", [])
    if not isinstance(executable, list) or any(p not in files for p in executable):
        raise TaskError(f"{where}: 'executable' must list paths of [files]")
    checks = []
    for i, raw in enumerate(_req(data, "checks", list, where)):
        at = f"{where}: checks[{i}]"
        if not isinstance(raw, dict):
            raise TaskError(f"{at} must be a table")
        extra = sorted(set(raw) - set(Check.__dataclass_fields__) - {"exit"})
        if extra:
            raise TaskError(f"{at}: unknown key {extra[0]!r}")
        kind = _req(raw, "kind", str, at)
        if kind not in CHECK_KINDS:
            raise TaskError(f"{at}: kind {kind!r}; use one of {CHECK_KINDS}")
        if kind == "run" and not raw.get("command"):
            raise TaskError(f"{at}: a 'run' check needs a command")
        if kind != "run" and not raw.get("path"):
            raise TaskError(f"{at}: a {kind!r} check needs a path")
        if kind == "unchanged" and raw["path"] not in files:
            raise TaskError(f"{at}: 'unchanged' names {raw['path']!r}, which is not in [files]")
        checks.append(
            Check(
                name=_req(raw, "name", str, at),
                kind=kind,
                path=str(raw.get("path", "")),
                equals=raw.get("equals"),
                command=str(raw.get("command", "")),
                output=raw.get("output"),
                exit_code=raw.get("exit", 0),
                unordered=bool(raw.get("unordered", False)),
            )
        )
    if not checks:
        raise TaskError(f"{where}: a task needs at least one check")
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise TaskError(f"{where}: check names must be unique")
    return Task(
        task_id=path.stem,
        category=category,
        split=split,
        instruction=" ".join(_req(data, "instruction", str, where).split()),
        files=files,
        executable=tuple(executable),
        checks=tuple(checks),
        solution=_req(data, "solution", str, where),
        source=path,
    )


@functools.cache
def load_tasks(task_dir: Path = TASK_DIR) -> tuple[Task, ...]:
    tasks = tuple(parse_task(p) for p in sorted(task_dir.glob("*.toml")))
    if not tasks:
        raise TaskError(f"no task files in {task_dir}")
    return tasks


def by_id(task_id: str) -> Task:
    for task in load_tasks():
        if task.task_id == task_id:
            return task
    raise KeyError(task_id)


def split_tasks(split: str) -> list[Task]:
    if split not in SPLITS:
        raise KeyError(split)
    return [t for t in load_tasks() if t.split == split]
