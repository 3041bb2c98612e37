"""The reference `gepa` package for benchmarks that measure against it.

It is installed only into bench/.venv-quality, never into the project's environment:
`ensure_environment` creates that venv with the pinned `gepa` (requirements-quality.txt)
and this checkout, and re-runs the calling script there.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUALITY_VENV = ROOT / "bench" / ".venv-quality"
REQUIREMENTS = ROOT / "bench" / "requirements-quality.txt"
# set in the re-executed child, so a broken environment fails instead of looping
REEXEC_ENV = "GEPA_QUALITY_BENCH_REEXEC"


def pinned_gepa_version() -> str:
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*gepa==([^\s;#]+).*", line)
        if match:
            return match.group(1)
    raise SystemExit(f"{REQUIREMENTS}: no `gepa==<version>` pin")


def environment_ready(pinned: str) -> bool:
    try:
        found = importlib.metadata.version("gepa")
        importlib.metadata.version("gepa-cli")
    except importlib.metadata.PackageNotFoundError:
        return False
    return found == pinned


def ensure_environment(script: str) -> None:
    """Re-run ``script`` in bench/.venv-quality unless this interpreter has both engines."""
    pinned = pinned_gepa_version()
    if environment_ready(pinned):
        return
    if os.environ.get(REEXEC_ENV):
        raise SystemExit(
            f"{sys.executable} still lacks gepa=={pinned} or gepa-cli; "
            f"delete {QUALITY_VENV} and run again"
        )
    python = QUALITY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {QUALITY_VENV} (gepa=={pinned} and this checkout)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(QUALITY_VENV)], check=True)
    marker = QUALITY_VENV / ".installed"
    # the checkout's own dependencies change too: reinstall when either file does
    wanted = REQUIREMENTS.read_text() + (ROOT / "pyproject.toml").read_text()
    if not marker.exists() or marker.read_text() != wanted:
        install = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*install, "-r", str(REQUIREMENTS), "-e", str(ROOT)], check=True)
        marker.write_text(wanted)
    os.environ[REEXEC_ENV] = "1"
    os.execv(str(python), [str(python), str(Path(script).resolve()), *sys.argv[1:]])
