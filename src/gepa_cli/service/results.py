"""What a client gets back from a run, read through the run directory's typed schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.schema import CandidateRow, FrontierDoc, Manifest, read_document, read_rows
from gepa_cli.runner import RunResult, summary
from gepa_cli.service.errors import ConflictError, NotFoundError
from gepa_cli.service.progress import ProgressBoard
from gepa_cli.service.queue import Request

# the run may continue: its files are being written, or will be
IN_PROGRESS = ("queued", "leased", "running")


def _manifest(run_dir: Path) -> Manifest | None:
    return read_document(run_dir / layout.MANIFEST, Manifest)


def _head(request: Request) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "run_id": request.run_id,
        "status": request.status,
        "client": request.client,
    }


def run_summary(request: Request, board: ProgressBoard) -> dict[str, Any]:
    """The run's result so far: the live feed while it runs, else its manifest."""
    run_dir = Path(request.run_dir)
    live = board.of(run_dir).view() if run_dir.is_dir() else None
    manifest = _manifest(run_dir) if run_dir.is_dir() else None
    if manifest is not None and not (request.active and live is not None):
        return {
            **_head(request),
            "source": "manifest",
            **summary(RunResult(run_dir, manifest.dump())),
            "num_candidates": manifest.num_candidates,
            "iterations": manifest.iterations,
            "started_at": manifest.started_at,
            "finished_at": manifest.finished_at,
            "error": manifest.error.dump() if manifest.error else None,
        }
    if live is not None:
        return {**_head(request), "source": "feed", "run_dir": str(run_dir), **live}
    raise NotFoundError(
        f"request {request.request_id} has no run yet (it is {request.status})",
        hint="wait until a worker starts it",
    )


def _best_texts(run_dir: Path, manifest: Manifest) -> dict[str, str] | None:
    best = manifest.best_candidate
    if best is None:
        return None
    if best.texts is not None:
        return dict(best.texts)
    path = run_dir / layout.CANDIDATES
    if path.exists():
        for _, row in read_rows(path, CandidateRow):
            if row.candidate_id == best.id:
                return dict(row.texts)
    return None


def run_artifact(request: Request) -> dict[str, Any]:
    """The best candidate's texts, the manifest and the frontier of a run that stopped."""
    run_dir = Path(request.run_dir)
    if request.status in IN_PROGRESS and run_dir.is_dir():
        raise ConflictError(
            f"request {request.request_id} is {request.status}: its run is in progress",
            hint="the artifact is written when the run stops; wait for it "
            "(gepa-cli remote wait), or pause the run",
        )
    manifest = _manifest(run_dir)
    texts = _best_texts(run_dir, manifest) if manifest is not None else None
    if manifest is None or manifest.best_candidate is None or texts is None:
        raise NotFoundError(
            f"request {request.request_id} ({request.status}) has no best candidate",
            hint="a run has one once its seed candidate was validated",
        )
    best = manifest.best_candidate
    frontier = read_document(run_dir / layout.FRONTIER, FrontierDoc)
    return {
        **_head(request),
        "best_candidate": {
            "id": best.id,
            "texts": texts,
            "val_mean": best.val_mean,
            "val_count": best.val_count,
            "heldout_mean": best.heldout_mean,
        },
        "manifest": manifest.dump(),
        "frontier": frontier.dump() if frontier is not None else None,
    }


def run_candidates(request: Request, *, limit: int, offset: int) -> dict[str, Any]:
    """The rows of candidates.jsonl, in registration order, a page at a time."""
    run_dir = Path(request.run_dir)
    if not run_dir.is_dir():
        raise NotFoundError(
            f"request {request.request_id} has no run yet (it is {request.status})",
            hint="wait until a worker starts it",
        )
    path = run_dir / layout.CANDIDATES
    rows = [row.dump() for _, row in read_rows(path, CandidateRow)] if path.exists() else []
    return {
        **_head(request),
        "candidates": rows[offset : offset + limit],
        "total": len(rows),
        "limit": limit,
        "offset": offset,
    }
