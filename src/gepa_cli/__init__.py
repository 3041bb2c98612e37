"""gepa-cli: reflective prompt evolution (GEPA) as a command-line toolkit and library."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gepa-cli")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
