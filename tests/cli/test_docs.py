"""The README and docs say what the tool does: its real --help, every option of each
command, and every stopped_by value the tool writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import typer

import gepa_cli.engine
from gepa_cli.cli.main import app
from gepa_cli.engine import STOPPED_BY
from gepa_cli.engine.outcome import BUDGET_LIMITS, EXTERNAL_STOPS
from gepa_cli.engine.settings import RESUMABLE_FIELDS
from gepa_cli.runner.control import STOP_REASONS
from gepa_cli.runner.run import INTERRUPTS
from support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HELP_BLOCK = re.compile(r"```console\n\$ gepa-cli((?: [\w-]+)*) --help\n(.*?)```", re.S)
TABLE_ROW = re.compile(r"^\| `gepa-cli ([^`]*)` \|", re.M)


def test_every_help_block_is_the_real_help() -> None:
    blocks = [(doc, m) for doc in DOCUMENTS for m in HELP_BLOCK.finditer(doc.read_text())]
    assert len(blocks) >= 2
    for doc, match in blocks:
        words = match.group(1).split()
        shown = run_cli(*words, "--help")
        assert shown.exit_code == 0, shown.output
        # the block may go on with other commands after the help
        documented = match.group(2).split("\n$ ")[0].rstrip("\n")
        assert shown.stdout.rstrip("\n") == documented, f"{doc.name}: gepa-cli {' '.join(words)}"


def _commands() -> dict[tuple[str, ...], Any]:
    """Every command of the CLI by its words (``("gepa", "run")``, ``("query",)``)."""
    out = {}
    root = typer.main.get_command(app)
    with typer.Context(root) as ctx:
        built = root.all_commands(ctx)  # type: ignore[attr-defined]
    for name, command in built.items():
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            out[(name,)] = command
        else:
            out.update({(name, sub): c for sub, c in subcommands.items()})
    return out


def test_the_command_table_names_every_option() -> None:
    rows = TABLE_ROW.findall((ROOT / "README.md").read_text())
    commands = _commands()
    documented = {}
    for row in rows:
        words = tuple(w for w in row.split() if re.fullmatch(r"[a-z]+", w))
        words = next(words[:n] for n in (2, 1) if words[:n] in commands)
        documented[words] = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", row))
    assert set(documented) == set(commands)
    for words, mentioned in documented.items():
        for param in commands[words].params:
            if param.param_type_name == "option" and "--help" not in param.opts:
                assert mentioned & set(param.opts), f"gepa-cli {' '.join(words)}: {param.opts}"


def _documented_stopped_by() -> list[str]:
    text = (ROOT / "docs" / "events.md").read_text()
    section = text.split("`stopped_by` is one of these", 1)[1].split("\n\n", 2)[1]
    values = []
    for bullet in re.split(r"\n(?=- )", section):
        values += re.findall(r"`([a-z_]+)`", bullet.split(": ", 1)[0])
    return values


def test_docs_list_every_stopped_by_value() -> None:
    assert sorted(_documented_stopped_by()) == sorted(STOPPED_BY)


def test_stopped_by_covers_every_reason_the_code_gives() -> None:
    limits = {f for f in RESUMABLE_FIELDS if f.startswith("max_") and "consecutive" not in f}
    assert set(BUDGET_LIMITS) == limits
    assert set(STOP_REASONS) | set(INTERRUPTS) <= set(EXTERNAL_STOPS)
    # every literal reason in the engine: returned by a stop rule or a budget guard,
    # or handed to emit_finished
    found = set()
    for path in Path(gepa_cli.engine.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (
                "stop_reason" in node.name or node.name == "blocked_by"
            ):
                found |= {
                    ret.value.value
                    for ret in ast.walk(node)
                    if isinstance(ret, ast.Return)
                    and isinstance(ret.value, ast.Constant)
                    and isinstance(ret.value.value, str)
                }
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "emit_finished"
            ):
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and a.value}
    assert len(found) >= 10, found
    assert found <= set(STOPPED_BY), found - set(STOPPED_BY)
