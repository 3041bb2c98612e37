"""The `offline` agent: a deterministic stand-in for a model, driven by the playbook.

It knows no shell by itself. From the task it takes the operands (``backticked`` paths
and commands, "quoted" texts, numbers) and the prose around them; everything it runs
comes from the playbook's recipes, filled with those operands, and its habits decide
what else it does: list the files first (and so find inputs in subfolders and tell the
input from the output), quote paths, create the output's folder, make scripts
executable, and run the program the task names and apply the playbook's error fixes.
With no recipe for a task it says so and stops, as a model without the know-how would.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .playbook import RUN, STAGES, Playbook, Recipe, phrase_position, words
from .sandbox import INSIDE_WORKSPACE, CommandResult

MAX_FIX_ROUNDS = 3
LIST_FILES = "find . -type f | sort"
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
ORDINALS = {
    "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_SAFE_EXT = re.compile(r"^\.[A-Za-z0-9_.-]+$")

Run = Callable[[str], Awaitable[CommandResult]]
Note = Callable[[str], None]


@dataclass
class TaskView:
    """What the agent makes of the instruction, before and after looking around."""

    prose: list[str]
    paths: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    exts: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    number: int | None = None

    @classmethod
    def parse(cls, instruction: str) -> TaskView:
        operands = re.findall(r"`([^`]+)`", instruction)
        texts = re.findall(r'"([^"]*)"', instruction)
        prose_text = re.sub(r'`[^`]*`|"[^"]*"', " _ ", instruction)
        view = cls(prose=words(prose_text), texts=texts)
        for op in operands:
            if (op.startswith("./") and " " not in op) or op.startswith(
                ("python3 ", "sh ", "bash ")
            ):
                view.commands.append(op)
            elif op.endswith("/"):
                view.dirs.append(op.rstrip("/"))
            elif _SAFE_EXT.match(op) and op.count(".") == 1:
                view.exts.append(op)
            else:
                view.paths.append(op)
        digits = [int(w) for w in view.prose if w.isdigit()]
        if digits:
            view.number = digits[0]
        else:
            for w in view.prose:
                if w in ORDINALS or w in NUMBER_WORDS:
                    view.number = ORDINALS.get(w, NUMBER_WORDS.get(w))
                    break
        return view


class Unfillable(KeyError):
    """A recipe needs an operand this task does not have."""


@dataclass
class Plan:
    src: str | None
    dst: str | None


def resolve(view: TaskView, files: list[str] | None) -> Plan:
    """Which path is read and which is written. Without a file listing the agent can only
    guess from the order the task names them in: first read, last written."""
    if not view.paths:
        return Plan(None, None)
    if files is None:
        return Plan(view.paths[0], view.paths[-1])
    present = set(files)

    def locate(path: str) -> str | None:
        if path in present:
            return path
        found = [f for f in files if PurePosixPath(f).name == PurePosixPath(path).name]
        return found[0] if len(found) == 1 else None

    located = [(p, locate(p)) for p in view.paths]
    sources = [where for _, where in located if where is not None]
    targets = [p for p, where in located if where is None]
    src = sources[0] if sources else None
    dst = targets[-1] if targets else view.paths[-1]
    return Plan(src, dst)


class Filler:
    def __init__(self, view: TaskView, plan: Plan, quote_paths: bool) -> None:
        self.view, self.plan, self.quote_paths = view, plan, quote_paths
        self.extra: dict[str, str] = {}

    def path(self, value: str | None) -> str:
        if value is None:
            raise Unfillable("path")
        return shlex.quote(value) if self.quote_paths else value

    def value(self, key: str) -> str:
        v = self.view
        if key == "src":
            return self.path(self.plan.src)
        if key == "dst":
            return self.path(self.plan.dst)
        if key in ("text", "text2"):
            i = 0 if key == "text" else 1
            if len(v.texts) <= i:
                raise Unfillable(key)
            return shlex.quote(v.texts[i])
        if key == "n":
            if v.number is None:
                raise Unfillable(key)
            return str(v.number)
        if key == "dir":
            if not v.dirs:
                raise Unfillable(key)
            return self.path(v.dirs[0])
        if key in ("ext", "ext2"):
            i = 0 if key == "ext" else 1
            if len(v.exts) <= i:
                raise Unfillable(key)
            return v.exts[i]
        if key in self.extra:
            return self.extra[key]
        raise Unfillable(key)

    def fill(self, template: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.value(m.group(1)), template)


def matches(recipe: Recipe, prose: list[str]) -> tuple[int, int, int] | None:
    """(phrase length, -position, -order) of the recipe's best phrase in the prose."""
    best = None
    for phrase in recipe.phrases:
        pos = phrase_position(phrase, prose)
        if pos >= 0:
            key = (len(words(phrase)), len(phrase), -recipe.order)
            best = key if best is None or key > best else best
    return best


def pipeline(book: Playbook, view: TaskView, filler: Filler) -> list[str]:
    """The fillable pipe stages the task calls for, one per stage, in stage order."""
    chosen: dict[str, str] = {}
    ranked: dict[str, tuple[int, int, int]] = {}
    for recipe in book.recipes:
        if recipe.on_error or recipe.stage == RUN:
            continue
        key = matches(recipe, view.prose)
        if key is None or (recipe.stage in ranked and ranked[recipe.stage] >= key):
            continue
        try:
            chosen[recipe.stage] = filler.fill(recipe.text)
        except Unfillable:
            continue
        ranked[recipe.stage] = key
    return [chosen[s] for s in STAGES if s in chosen]


def with_folder(command: str, dst: str | None, book: Playbook, filler: Filler) -> str:
    if "mkdir" in book.habits and dst and "/" in dst:
        return f"mkdir -p {filler.path(str(PurePosixPath(dst).parent))} && {command}"
    return command


def error_context(output: str) -> dict[str, str]:
    """What a fix may refer to: the file, name and suggestion an error message names."""
    found: dict[str, str] = {}
    frames = re.findall(r'File "([^"]+)", line \d+', output)
    inside = [f for f in frames if not f.startswith(("<", "/usr/", "/lib"))]
    if inside:
        found["file"] = inside[-1].removeprefix(INSIDE_WORKSPACE + "/")
    else:
        m = re.search(
            r"^(?:bash: )?(?:line \d+: )?(\S+?): (?:line \d+:|Permission denied)", output, re.M
        )
        if m:
            found["file"] = m.group(1)
    m = re.search(r"name '(\w+)' is not defined", output)
    if m:
        found["name"] = m.group(1)
    m = re.search(r"Did you mean: '(\w+)'", output)
    if m:
        found["suggestion"] = m.group(1)
    return found


def fix_for(book: Playbook, output: str, filler: Filler) -> str | None:
    context = error_context(output)
    for recipe in book.recipes:
        if not recipe.on_error or not any(p in output for p in recipe.phrases):
            continue
        filler.extra = {k: shlex.quote(v) for k, v in context.items()}
        try:
            return filler.fill(recipe.text)
        except Unfillable:
            continue
        finally:
            filler.extra = {}
    return None


async def offline_agent(playbook: str, instruction: str, run: Run, note: Note) -> None:
    book = Playbook.parse(playbook)
    view = TaskView.parse(instruction)
    files = None
    if "look" in book.habits:
        listing = await run(LIST_FILES)
        files = [line.removeprefix("./") for line in listing.output.splitlines() if line]
    plan = resolve(view, files)
    filler = Filler(view, plan, quote_paths="quote" in book.habits)

    acted = False
    runs = sorted(
        (key, r)
        for r in book.recipes
        if not r.on_error and r.stage == RUN and (key := matches(r, view.prose)) is not None
    )
    stages = pipeline(book, view, filler)
    for _key, recipe in reversed(runs):  # the most specific whole-command recipe
        filler.extra = {"script": shlex.quote(" | ".join(['cat "$1"', *stages]))} if stages else {}
        try:
            command = filler.fill(recipe.text)
        except Unfillable:
            continue
        await run(with_folder(command, plan.dst, book, filler))
        acted = True
        break
    # A pipeline needs an input that is not its output: `cat f | ... > f` would race the
    # shell's truncation of f and read it empty or not at all.
    if not acted and stages and plan.src is not None and plan.dst not in (None, plan.src):
        command = " | ".join([f"cat {filler.path(plan.src)}", *stages])
        command = f"{command} > {filler.path(plan.dst)}"
        await run(with_folder(command, plan.dst, book, filler))
        acted = True
    filler.extra = {}
    if acted and "exec" in book.habits and plan.dst and plan.dst.endswith((".sh", ".py")):
        await run(f"chmod +x {filler.path(plan.dst)}")

    if "try" in book.habits and view.commands:
        target = view.commands[0]
        for _ in range(MAX_FIX_ROUNDS):
            result = await run(target)
            fix = fix_for(book, result.output, filler)
            if fix is None:
                if result.exit_code != 0:
                    note(f"no fix in the playbook for the error of `{target}`")
                break
            await run(fix)
            acted = True
        else:
            await run(target)
    if not acted and not view.commands:
        note("no recipe in the playbook matches this task")
    elif not acted and "try" not in book.habits:
        note(f"no recipe in the playbook matches this task; `{view.commands[0]}` was not run")
