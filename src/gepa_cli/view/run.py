"""One run directory, read for people: its documents, its feed and its proposals.

Everything comes through the run-directory schema: the documents as `read_run` loads
them (manifest, checkpoint, frontier, resolved config, lock), the feed folded by
`replay_events` (candidates, validation scores, frontier, best, budget, decisions) and
the proposals ledger. Nothing is written, so a run that is still writing is never
disturbed; its half-written last lines are left out, as every reader does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.replay import Replay, ReplayCandidate, replay_events
from gepa_cli.artifacts.schema import FrontierDoc, Manifest, ProposalRow, UsageTotals, read_rows
from gepa_cli.errors import ViewError
from gepa_cli.workspace.discover import RunFiles, is_run_dir, read_run
from gepa_cli.workspace.views import run_state

# candidate references every command takes besides an id
BEST, SEED = "best", "seed"
LIMITS = (
    "max_total_rollouts",
    "max_train_rollouts",
    "max_heldout_rollouts",
    "max_proposals",
    "max_tokens",
    "max_cost_usd",
)


@dataclass
class RunView:
    path: Path
    files: RunFiles
    state: str  # running | finished | stopped | failed | crashed | unknown | incomplete
    replay: Replay
    proposals: list[ProposalRow] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> RunView:
        path = Path(path)
        if not is_run_dir(path):
            raise ViewError(
                f"{path} is not a run directory",
                hint="pass a directory under your runs directory (it holds events.jsonl "
                "or manifest.json)",
            )
        files = read_run(path)
        events = path / layout.EVENTS
        replay = replay_events(events) if events.is_file() else Replay(path=str(events))
        proposals_path = path / layout.PROPOSALS
        proposals = (
            [row for _, row in read_rows(proposals_path, ProposalRow, error=ViewError)]
            if proposals_path.is_file()
            else []
        )
        return cls(path, files, run_state(files), replay, proposals)

    # -- the run ----------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        if self.manifest is not None:
            return self.manifest.run_id
        return self.replay.run_id or self.path.name

    @property
    def manifest(self) -> Manifest | None:
        return self.files.manifest

    @property
    def stopped_by(self) -> str | None:
        if self.manifest is not None:
            return self.manifest.stopped_by
        return self.replay.stopped_by

    @property
    def error(self) -> str | None:
        error = self.manifest.error if self.manifest is not None else None
        return f"[{error.error_code}] {error.message}" if error is not None else None

    @property
    def frontier(self) -> FrontierDoc | None:
        # the feed is read after frontier.json, so it is the fresher of the two
        return self.replay.frontier or self.files.frontier

    @property
    def budget(self) -> dict[str, Any] | None:
        """What the run used, as the engine counts it (the manifest's, or the feed's)."""
        if self.manifest is not None and self.manifest.budget is not None:
            return self.manifest.budget.dump()
        return self.replay.budget

    @property
    def limits(self) -> dict[str, float | int]:
        """The budget limits the run was given (its resolved config), unset ones left out."""
        config = self.files.config
        gepa = config.section("gepa") if config is not None else {}
        return {k: gepa[k] for k in LIMITS if isinstance(gepa.get(k), (int, float))}

    @property
    def usage(self) -> dict[str, UsageTotals]:
        """Recorded usage by boundary: the manifest's, or the last checkpoint's while the
        run has no manifest yet."""
        if self.manifest is not None:
            return dict(self.manifest.usage)
        if self.files.checkpoint is not None:
            return dict(self.files.checkpoint.runner.spend.by_boundary)
        return {}

    # -- candidates -------------------------------------------------------------------
    @property
    def candidates(self) -> list[ReplayCandidate]:
        return self.replay.candidates

    @property
    def validated(self) -> list[ReplayCandidate]:
        return [c for c in self.candidates if c.val_mean is not None]

    @property
    def seed(self) -> ReplayCandidate | None:
        return next((c for c in self.candidates if c.origin == "seed"), None)

    @property
    def best(self) -> ReplayCandidate | None:
        best = self.manifest.best_candidate if self.manifest is not None else None
        if best is not None and self.replay.candidate(best.id) is not None:
            return self.replay.candidate(best.id)
        return self.replay.best_candidate

    def best_texts(self) -> dict[str, str] | None:
        """The best candidate's texts as the manifest records them (the feed's while the
        run has no manifest)."""
        best = self.manifest.best_candidate if self.manifest is not None else None
        if best is not None and best.texts is not None:
            return dict(best.texts)
        candidate = self.best
        return dict(candidate.texts) if candidate is not None else None

    @property
    def heldout_means(self) -> dict[str, float]:
        return {
            str(row["candidate_id"]): float(row["mean"])
            for row in self.replay.heldout
            if row.get("outcome") == "completed" and isinstance(row.get("mean"), (int, float))
        }

    def candidate(self, ref: str) -> ReplayCandidate:
        """``best``, ``seed`` or a candidate id; anything else is a `ViewError`."""
        if ref == BEST:
            found = self.best
        elif ref == SEED:
            found = self.seed
        else:
            found = self.replay.candidate(ref)
        if found is None:
            known = ", ".join(c.id for c in self.candidates[:12]) or "none yet"
            more = ", ..." if len(self.candidates) > 12 else ""
            raise ViewError(
                f"run {self.run_id} ({self.path}) has no candidate {ref!r}",
                hint=f"use best, seed or a candidate id ({known}{more})",
            )
        return found

    def roles(self, candidate: ReplayCandidate) -> list[str]:
        best, seed = self.best, self.seed
        return [
            role
            for role, other in ((SEED, seed), (BEST, best))
            if other is not None and other.id == candidate.id
        ]

    def lineage(self, candidate: ReplayCandidate) -> list[ReplayCandidate]:
        """The candidate and every ancestor (both parents of a merge), in registration order."""
        wanted, stack = set(), [candidate.id]
        while stack:
            cid = stack.pop()
            if cid in wanted:
                continue
            wanted.add(cid)
            found = self.replay.candidate(cid)
            stack.extend(found.parents if found is not None else [])
        return [c for c in self.candidates if c.id in wanted]

    def frontier_keys(self) -> dict[str, list[str]]:
        """Candidate id -> the frontier keys it holds (it reaches the best score there)."""
        keys: dict[str, list[str]] = {}
        frontier = self.frontier
        for key, ids in (frontier.frontier if frontier is not None else {}).items():
            for cid in ids:
                keys.setdefault(cid, []).append(key)
        return keys
