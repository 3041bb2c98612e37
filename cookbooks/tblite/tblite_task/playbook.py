"""The playbook: the candidate text the optimizer evolves, and what the offline agent reads.

It is a plain markdown prompt (the `openai_chat` agent gets it as its system message).
The offline agent acts on two kinds of bullet lines in it:

- *habits*, bullets under a ``## Habits`` heading. Five are understood, each by its key
  words (`HABITS`); any other habit is prose for a model and changes nothing offline.
- *recipes*, bullets anywhere of the form ``- "phrase" | "other phrase" -> STAGE: TEXT``.
  A recipe applies when one of its phrases occurs in the task's prose (words compared by
  prefix: "contain" matches "containing"). STAGE is a pipeline stage (`STAGES`, the
  TEXT is a filter the input file is piped through), ``run`` (TEXT is a whole command),
  or, written ``- error "pattern" -> run: TEXT``, a fix to run when a command's output
  contains the pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Pipeline stages in the order they are joined, whatever order the task names them in.
STAGES = ("select", "filter", "transform", "sort", "dedupe", "limit", "count")
RUN = "run"

# habit -> (words that must all occur in the bullet, one of which alternatives)
HABITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "look": (("list",), ("files", "folder", "directory")),
    "quote": (("quote",), ("name", "names", "path", "paths")),
    "mkdir": (("folder",), ("create", "mkdir", "make")),
    "try": (("run",), ("program", "script", "command", "tests")),
    "exec": (("executable",), ("script", "scripts")),
}
# The sentence a proposer writes for each habit (the agent needs only the key words).
HABIT_TEXT = {
    "look": "List the files first (`find . -type f`) and use the paths you find there.",
    "quote": "Quote file names and paths in commands: they may contain spaces.",
    "mkdir": "Create the output file's folder before writing to it (`mkdir -p`).",
    "try": "Run the program or script the task names, read its errors and fix what they "
    "point at; then run it again.",
    "exec": "Make every script you write executable (`chmod +x`).",
}

_RECIPE = re.compile(
    r"""^\s*[-*]\s*(?P<error>error\s+)?(?P<phrases>"[^"]+"(?:\s*\|\s*"[^"]+")*)\s*->\s*
    (?P<stage>[a-z]+)\s*:\s*(?P<text>\S.*?)\s*$""",
    re.X,
)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Recipe:
    phrases: tuple[str, ...]
    stage: str
    text: str
    on_error: bool = False
    order: int = 0  # position in the playbook: ties go to the earlier recipe

    def render(self) -> str:
        head = "error " if self.on_error else ""
        phrases = " | ".join(f'"{p}"' for p in self.phrases)
        return f"- {head}{phrases} -> {self.stage}: {self.text}"


@dataclass
class Playbook:
    habits: set[str] = field(default_factory=set)
    recipes: list[Recipe] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Playbook:
        book = cls()
        section = ""
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                section = stripped.lstrip("#").strip().lower()
                continue
            m = _RECIPE.match(line)
            if m:
                stage = m.group("stage")
                on_error = bool(m.group("error"))
                if (on_error and stage != RUN) or (stage not in STAGES and stage != RUN):
                    continue
                phrases = tuple(p.strip() for p in re.findall(r'"([^"]+)"', m.group("phrases")))
                book.recipes.append(
                    Recipe(phrases, stage, m.group("text"), on_error, len(book.recipes))
                )
                continue
            if "habit" in section and stripped[:1] in "-*" and stripped:
                habit = habit_of(stripped)
                if habit:
                    book.habits.add(habit)
        return book


def habit_of(line: str) -> str | None:
    """The habit a bullet states, by its key words; None for any other sentence."""
    found = set(words(line))
    for habit, (required, any_of) in HABITS.items():
        if all(w in found for w in required) and any(w in found for w in any_of):
            return habit
    return None


def phrase_position(phrase: str, prose_words: list[str]) -> int:
    """Index of the first run of prose words the phrase's words begin, or -1."""
    pw = words(phrase)
    if not pw:
        return -1
    for i in range(len(prose_words) - len(pw) + 1):
        if all(prose_words[i + j].startswith(w) for j, w in enumerate(pw)):
            return i
    return -1


def render_recipe(phrases: list[str], stage: str, text: str, on_error: bool = False) -> str:
    return Recipe(tuple(phrases), stage, text, on_error).render()
