"""The layer picture of design.md section 1, checked on the source, not by trust.

    cli/ (Typer)      service/ (HTTP, queue)      online/ (proxy, sessions)
            \\               |                        /
             +---------- runner (one run) ----------+
                    /        |         \\
         engine/ (pure)   runtime/ (IO)   artifacts/ (files)

Every import of a gepa_cli package by another (at any depth: lazy imports inside
functions and typing-only imports count) must point down this picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gepa_cli

SRC = Path(gepa_cli.__file__).parent
ROOT = "(gepa_cli)"  # the package's own __init__ (its version)
# leaves: the errors, and the names of the container contracts (both sides speak them)
BASE = {"errors", "contracts", ROOT}
FRONT_ENDS = {"cli", "service", "online"}

# package -> the packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "contracts": set(),
    ROOT: set(),
    "engine": BASE,
    "artifacts": BASE,
    "config": BASE | {"engine"},
    "runtime": BASE | {"engine", "artifacts", "config"},
    "runner": BASE | {"engine", "artifacts", "config", "runtime"},
    # status and queries over run directories read the files, never the runner
    "workspace": BASE | {"engine", "artifacts", "config"},
    # a container never depends on the optimizer's internals
    "taskapp": BASE,
    # the service's HTTP client speaks the API, never the service's internals
    "client": BASE,
    # show, diff and the HTML report read run directories, as workspace status does
    "view": BASE | {"artifacts", "workspace"},
    **{
        front: BASE | {"engine", "artifacts", "config", "runtime", "runner", "workspace", "view"}
        for front in FRONT_ENDS
    },
}
# `gepa-cli remote` is a terminal over the service's client
ALLOWED["cli"] = ALLOWED["cli"] | {"client"}
# online sessions live inside the run service: they are mounted into its app as a
# router and reuse its keys, errors and SSE; their Python client builds on the service
# client. So online may import service and client, never the reverse.
ALLOWED["online"] = ALLOWED["online"] | {"service", "client"}
# The imports of a front end by another: `gepa-cli gepa service` starts the service with
# the online routes mounted, and `gepa-cli online` talks to them with the online client.
LAUNCHERS = {
    ("cli/service.py", "service"),
    ("cli/service.py", "online"),
    ("cli/online.py", "online"),
}


def _package(relative: Path) -> str:
    if len(relative.parts) > 1:
        return relative.parts[0]
    return ROOT if relative.stem == "__init__" else relative.stem


def _imported(node: ast.AST, module: Path, src: Path) -> list[str]:
    """The gepa_cli modules an import statement names, as dotted paths under gepa_cli."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against the importing module's package
            parts = list(module.relative_to(src).parent.parts)
            base = parts[: len(parts) - (node.level - 1)]
            names = [".".join(["gepa_cli", *base, *([node.module] if node.module else [])])]
        else:
            names = [node.module or ""]
    else:
        return []
    return [name for name in names if name == "gepa_cli" or name.startswith("gepa_cli.")]


def layer_violations(src: Path) -> list[str]:
    """Every import in the package at ``src`` that points up or across the layers."""
    problems = []
    for path in sorted(src.rglob("*.py")):
        relative = path.relative_to(src)
        package = _package(relative)
        if package not in ALLOWED:
            problems.append(f"{relative}: package {package!r} has no place in the layers")
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported(node, path, src):
                parts = name.split(".")
                target = parts[1] if len(parts) > 1 else ROOT
                if target in {"py", "typed"} or target == package:
                    continue
                if target in ALLOWED[package]:
                    continue
                if (relative.as_posix(), target) in LAUNCHERS:
                    continue
                problems.append(f"{relative}:{node.lineno}: {package} imports {name}")
    return problems


def test_the_source_keeps_the_layers() -> None:
    assert {_package(p.relative_to(SRC)) for p in SRC.rglob("*.py")} >= {
        "engine", "artifacts", "runtime", "runner", "workspace", "cli", "service", "online"
    }  # fmt: skip
    assert layer_violations(SRC) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    src = root / "gepa_cli"
    for name, text in {"__init__.py": "", "errors.py": "", **files}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def test_an_upward_or_sideways_import_is_caught(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "engine/__init__.py": "",
            "engine/loop.py": "from gepa_cli.errors import ConfigError\n",
            "engine/steps.py": "def run():\n    from gepa_cli.runner import GepaRun\n",
            "workspace/__init__.py": "",
            "workspace/invariants.py": "from gepa_cli.runner.recorder import FORMAT\n",
            "artifacts/__init__.py": "",
            "artifacts/rows.py": "from ..engine import loop\n",
            "runner/__init__.py": "",
            "runner/run.py": "import gepa_cli.cli.app\n",
            "service/__init__.py": "",
            "service/app.py": "from gepa_cli.cli import main\nfrom gepa_cli.runner import run\n",
            "taskapp/__init__.py": "from gepa_cli.engine import loop\n",
            "cli/__init__.py": "",
            "cli/service.py": "from gepa_cli.service import app\n",
            "cli/query.py": "from gepa_cli.service import app\n",
            "online/__init__.py": "",
            "online/routes.py": "from gepa_cli.service.app import create_app\n",
            "online/proxy.py": "from gepa_cli.cli import main\n",
            "service/mount.py": "from gepa_cli.online.routes import OnlineExtension\n",
        },
    )
    assert layer_violations(src) == [
        "artifacts/rows.py:1: artifacts imports gepa_cli.engine",
        "cli/query.py:1: cli imports gepa_cli.service",
        "engine/steps.py:2: engine imports gepa_cli.runner",
        "online/proxy.py:1: online imports gepa_cli.cli",
        "runner/run.py:1: runner imports gepa_cli.cli.app",
        "service/app.py:1: service imports gepa_cli.cli",
        "service/mount.py:1: service imports gepa_cli.online.routes",
        "taskapp/__init__.py:1: taskapp imports gepa_cli.engine",
        "workspace/invariants.py:1: workspace imports gepa_cli.runner.recorder",
    ]
