"""gepa-cli: reflective prompt evolution (GEPA) as a command-line toolkit and library."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # read on first use: importlib.metadata would add ~30 ms to every start of the CLI
    if name != "__version__":
        raise AttributeError(f"module 'gepa_cli' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gepa-cli")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"
