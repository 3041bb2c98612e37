"""The engine does no IO and reads no clock: checked on its source, not by trust."""

from __future__ import annotations

import ast
from pathlib import Path

import gepa_cli.engine

DENIED_MODULES = {
    "os", "io", "sys", "time", "datetime", "socket", "subprocess", "threading",
    "multiprocessing", "concurrent", "pathlib", "shutil", "tempfile", "glob", "logging",
    "httpx", "requests", "urllib", "http", "asyncio.subprocess", "signal", "select",
    "sqlite3", "pickle", "duckdb", "pydantic", "gepa_cli.config", "gepa_cli.runtime",
    "gepa_cli.artifacts", "gepa_cli.cli", "orjson", "rich", "typer",
}  # fmt: skip
DENIED_CALLS = {"open", "print", "input", "exec", "eval", "__import__", "breakpoint"}
DENIED_ATTRIBUTES = {
    "create_subprocess_exec", "create_subprocess_shell", "to_thread", "sleep",
    "get_event_loop", "run_in_executor", "time", "monotonic", "perf_counter",
}  # fmt: skip

ENGINE_DIR = Path(gepa_cli.engine.__file__).parent


def _denied(name: str) -> bool:
    return any(name == d or name.startswith(d + ".") for d in DENIED_MODULES)


def test_engine_imports_nothing_that_does_io_or_reads_the_clock() -> None:
    files = sorted(ENGINE_DIR.glob("*.py"))
    assert len(files) >= 10
    problems: list[str] = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{path.name}: import {a.name}" for a in node.names if _denied(a.name)]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if _denied(module):
                    problems.append(f"{path.name}: from {module} import ...")
                if module == "asyncio":
                    problems.append(f"{path.name}: from asyncio import ...")
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in DENIED_CALLS:
                    problems.append(f"{path.name}:{node.lineno}: {func.id}()")
                if isinstance(func, ast.Attribute) and func.attr in DENIED_ATTRIBUTES:
                    problems.append(f"{path.name}:{node.lineno}: .{func.attr}()")
    assert problems == []


def test_the_purity_check_would_catch_a_violation() -> None:
    tree = ast.parse("import os\nfrom time import monotonic\nopen('x')\n")
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Import) and _denied(n.names[0].name)]
    assert found and _denied("time") and _denied("gepa_cli.runtime.boundary")
    assert not _denied("random") and not _denied("hashlib")
