"""`cache inspect`: what a cache directory holds, how runs used it, and what is damaged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.atomic import is_temp_file
from gepa_cli.artifacts.schema import CacheProfileDoc, read_document
from gepa_cli.errors import CacheError, GepaCliError
from gepa_cli.runtime.cache import KEY, load_entry


class BoundaryStats(BaseModel):
    entries: int = 0
    bytes: int = 0
    hits: int = 0
    misses: int = 0
    writes: int = 0


class NamespaceStats(BaseModel):
    entries: int = 0
    bytes: int = 0
    boundaries: dict[str, BoundaryStats] = Field(default_factory=dict)


class CorruptEntry(BaseModel):
    file: str
    reason: str


class CacheInspection(BaseModel):
    path: str
    entries: int = 0
    bytes: int = 0
    namespaces: dict[str, NamespaceStats] = Field(default_factory=dict)
    profiles_read: int = 0
    stray_temp_files: int = 0
    verified: bool = False
    corrupt: list[CorruptEntry] = Field(default_factory=list)

    def boundary(self, namespace: str, boundary: str) -> BoundaryStats:
        ns = self.namespaces.setdefault(namespace, NamespaceStats())
        return ns.boundaries.setdefault(boundary, BoundaryStats())


def _entry_files(root: Path, namespace: str | None) -> Iterator[tuple[str, str, Path]]:
    """(namespace, boundary, file) for every file laid out as an entry."""
    namespaces = [root / namespace] if namespace else sorted(root.iterdir())
    for ns_dir in namespaces:
        if not ns_dir.is_dir():
            continue
        for boundary_dir in sorted(p for p in ns_dir.iterdir() if p.is_dir()):
            for file in sorted(boundary_dir.glob("*/*")):
                if file.is_file():
                    yield ns_dir.name, boundary_dir.name, file


def _read_profiles(runs_dir: Path, report: CacheInspection, namespace: str | None) -> None:
    if not runs_dir.is_dir():
        return
    # runs/<run_id>/cache_profile.json; deeper trees (workspaces of workspaces) too
    for file in sorted(runs_dir.rglob(layout.CACHE_PROFILE)):
        try:
            profile = read_document(file, CacheProfileDoc)
        except GepaCliError:
            profile = None  # a run still writing or from another version: counts are advisory
        if profile is None or (namespace and profile.namespace != namespace):
            continue
        report.profiles_read += 1
        for name, counts in profile.boundaries.items():
            stats = report.boundary(profile.namespace, name)
            stats.hits += counts.hits
            stats.misses += counts.misses
            stats.writes += counts.writes


def inspect_cache(
    path: Path,
    *,
    namespace: str | None = None,
    runs_dir: Path | None = Path("runs"),
    verify: bool = False,
) -> CacheInspection:
    """Count entries and bytes by namespace and boundary; with ``verify`` re-read each."""
    if not path.is_dir():
        raise CacheError(
            f"no cache directory at {path}",
            hint="pass --path (the [cache] path of your config) or record one first",
        )
    report = CacheInspection(path=str(path), verified=verify)
    for ns, boundary, file in _entry_files(path, namespace):
        if is_temp_file(file):
            report.stray_temp_files += 1
            continue
        if file.suffix != ".json" or not KEY.match(file.stem):
            continue
        size = file.stat().st_size
        stats = report.boundary(ns, boundary)
        stats.entries += 1
        stats.bytes += size
        report.namespaces[ns].entries += 1
        report.namespaces[ns].bytes += size
        report.entries += 1
        report.bytes += size
        if verify:
            try:
                entry = load_entry(file)
                if entry["namespace"] != ns or entry["boundary"] != boundary:
                    report.corrupt.append(
                        CorruptEntry(file=str(file), reason="stored under the wrong directory")
                    )
            except CacheError as error:
                report.corrupt.append(CorruptEntry(file=str(file), reason=error.message))
    if runs_dir is not None:
        _read_profiles(runs_dir, report, namespace)
    return report


def render_inspection(report: CacheInspection) -> str:
    """Human-readable summary, one line per namespace and boundary."""
    lines = [f"cache {report.path}: {report.entries} entries, {_size(report.bytes)}"]
    for ns, ns_stats in sorted(report.namespaces.items()):
        lines.append(f"  {ns}: {ns_stats.entries} entries, {_size(ns_stats.bytes)}")
        for name, b in sorted(ns_stats.boundaries.items()):
            lines.append(
                f"    {name:<28} entries={b.entries:<6} bytes={b.bytes:<9} "
                f"hits={b.hits} misses={b.misses} writes={b.writes}"
            )
    if report.profiles_read:
        lines.append(f"  usage summed from {report.profiles_read} run profile(s)")
    if report.stray_temp_files:
        lines.append(f"  {report.stray_temp_files} stray temp file(s) from interrupted writes")
    if report.verified:
        if report.corrupt:
            lines.append(f"  {len(report.corrupt)} corrupt entr(y/ies):")
            lines.extend(f"    {c.file}: {c.reason}" for c in report.corrupt)
        else:
            lines.append("  verify: all entries intact")
    return "\n".join(lines)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
