"""The run's state in one object: candidates, their validation scores, the memo,
rejected proposals, counters and the budget ledger.

Everything here is plain data that round-trips through JSON, because the checkpoint
is exactly this object (plus the RNG and sampler positions).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gepa_cli.engine.budget import Ledger
from gepa_cli.engine.types import Texts

if TYPE_CHECKING:
    from gepa_cli.engine.chain import ChainBook


def content_hash(texts: Texts) -> str:
    """A stable hash of a candidate's texts: equal texts, equal hash, whatever the order."""
    canonical = json.dumps(dict(texts), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def candidate_id(index: int) -> str:
    return f"c{index:04d}"


def proposal_id(index: int) -> str:
    return f"p{index:04d}"


@dataclass
class Candidate:
    id: str
    texts: dict[str, str]
    content_hash: str
    parents: list[str]
    origin: str  # "seed" | "reflection" | "merge"
    iteration: int  # the iteration that produced it (0 for the seed)
    val_scores: dict[str, float] = field(default_factory=dict)
    # objective name -> mean over the validation examples it was scored on
    val_objectives: dict[str, float] = field(default_factory=dict)
    # round-robin position: index into the target modules of the next one to improve
    next_component: int = 0

    @property
    def val_mean(self) -> float:
        if not self.val_scores:
            return 0.0
        return sum(self.val_scores.values()) / len(self.val_scores)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "texts": dict(self.texts),
            "content_hash": self.content_hash,
            "parents": list(self.parents),
            "origin": self.origin,
            "iteration": self.iteration,
            "val_scores": dict(self.val_scores),
            "val_objectives": dict(self.val_objectives),
            "next_component": self.next_component,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        return cls(
            id=str(data["id"]),
            texts={str(k): str(v) for k, v in data["texts"].items()},
            content_hash=str(data["content_hash"]),
            parents=[str(p) for p in data["parents"]],
            origin=str(data["origin"]),
            iteration=int(data["iteration"]),
            val_scores={str(k): float(v) for k, v in data["val_scores"].items()},
            val_objectives={str(k): float(v) for k, v in data["val_objectives"].items()},
            next_component=int(data["next_component"]),
        )


@dataclass
class MemoEntry:
    """One evaluated (candidate content, example) pair; the reason it is never run twice."""

    score: float
    status: str
    output: Any
    feedback: str
    objectives: dict[str, float]
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "status": self.status,
            "output": self.output,
            "feedback": self.feedback,
            "objectives": dict(self.objectives),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoEntry:
        return cls(
            score=float(data["score"]),
            status=str(data["status"]),
            output=data["output"],
            feedback=str(data["feedback"]),
            objectives={str(k): float(v) for k, v in data["objectives"].items()},
            error=None if data["error"] is None else str(data["error"]),
        )


@dataclass
class MergeBook:
    """Merge bookkeeping: how many merges are due and which were already tried."""

    due: int = 0
    tested: int = 0
    last_iteration_found_new: bool = False
    tried_triplets: list[list[str]] = field(default_factory=list)  # [id1, id2, ancestor]

    def to_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "tested": self.tested,
            "last_iteration_found_new": self.last_iteration_found_new,
            "tried_triplets": [list(t) for t in self.tried_triplets],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MergeBook:
        return cls(
            due=int(data["due"]),
            tested=int(data["tested"]),
            last_iteration_found_new=bool(data["last_iteration_found_new"]),
            tried_triplets=[[str(x) for x in t] for t in data["tried_triplets"]],
        )


@dataclass
class Counters:
    iteration: int = 0
    proposals_made: int = 0  # numbering of proposals (p0001, ...), including failures
    consecutive_failures: int = 0
    failure_reasons: list[str] = field(default_factory=list)  # the latest few
    consecutive_noops: int = 0
    proposals_since_improvement: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "proposals_made": self.proposals_made,
            "consecutive_failures": self.consecutive_failures,
            "failure_reasons": list(self.failure_reasons),
            "consecutive_noops": self.consecutive_noops,
            "proposals_since_improvement": self.proposals_since_improvement,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counters:
        return cls(
            iteration=int(data["iteration"]),
            proposals_made=int(data["proposals_made"]),
            consecutive_failures=int(data["consecutive_failures"]),
            failure_reasons=[str(r) for r in data["failure_reasons"]],
            consecutive_noops=int(data["consecutive_noops"]),
            proposals_since_improvement=int(data["proposals_since_improvement"]),
        )


@dataclass
class EngineState:
    target_modules: list[str]
    train_ids: list[str]
    val_ids: list[str]
    heldout_ids: list[str]
    candidates: list[Candidate] = field(default_factory=list)
    # content hash -> example id -> result; shared by all splits, since a rollout of the
    # same texts on the same example is the same rollout
    memo: dict[str, dict[str, MemoEntry]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # example id -> task fields
    rejected_hashes: list[str] = field(default_factory=list)  # evaluated and turned down
    ledger: Ledger = field(default_factory=Ledger)
    counters: Counters = field(default_factory=Counters)
    merge: MergeBook = field(default_factory=MergeBook)
    heldout_means: dict[str, float] = field(default_factory=dict)  # candidate id -> mean
    # the run's one order of validation ids for staged validation (empty under "full"),
    # so every child is raced against its rivals on the same examples
    val_order: list[str] = field(default_factory=list)
    # the open chain of unvalidated edits and its target length (chain.py)
    chains: ChainBook = field(default_factory=lambda: _chain_book())
    # derived from the candidates, kept up to date instead of recomputed (never saved)
    _frontiers: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def frontier_index(self, frontier_type: str) -> Any:
        """The run's `FrontierIndex` for ``frontier_type``, caught up with the candidates."""
        from gepa_cli.engine.frontier import FrontierIndex

        index = self._frontiers.get(frontier_type)
        if index is None:
            index = self._frontiers[frontier_type] = FrontierIndex(frontier_type)
        return index.sync(self.candidates)

    # --- queries -----------------------------------------------------------------
    def by_id(self, cid: str) -> Candidate:
        for candidate in self.candidates:
            if candidate.id == cid:
                return candidate
        raise KeyError(cid)

    def known_hashes(self) -> set[str]:
        return {c.content_hash for c in self.candidates}

    def seen_before(self, digest: str) -> str | None:
        """Why texts with this hash must not be evaluated again, or None."""
        if digest in self.known_hashes():
            return "known_candidate"
        if digest in self.rejected_hashes:
            return "rejected_before"
        return None

    def best(self) -> Candidate:
        """Highest validation mean; ties go to the earlier candidate."""
        best = self.candidates[0]
        for candidate in self.candidates[1:]:
            if candidate.val_mean > best.val_mean:
                best = candidate
        return best

    def ancestors(self, cid: str) -> set[str]:
        found: set[str] = set()
        stack = list(self.by_id(cid).parents)
        while stack:
            parent = stack.pop()
            if parent not in found:
                found.add(parent)
                stack.extend(self.by_id(parent).parents)
        return found

    def next_candidate_id(self) -> str:
        return candidate_id(len(self.candidates))

    # --- serialization -------------------------------------------------------------
    def to_dict(self, *, memo: bool = True) -> dict[str, Any]:
        """Plain JSON data. ``memo=False`` leaves the memo out (null): a caller that
        keeps every rollout in its own ledger rebuilds it from there on resume, which
        keeps each checkpoint from growing with the whole run."""
        return {
            "target_modules": list(self.target_modules),
            "train_ids": list(self.train_ids),
            "val_ids": list(self.val_ids),
            "heldout_ids": list(self.heldout_ids),
            "candidates": [c.to_dict() for c in self.candidates],
            "memo": {
                digest: {eid: entry.to_dict() for eid, entry in sorted(rows.items())}
                for digest, rows in sorted(self.memo.items())
            }
            if memo
            else None,
            "inputs": {eid: self.inputs[eid] for eid in sorted(self.inputs)},
            "rejected_hashes": list(self.rejected_hashes),
            "ledger": self.ledger.to_dict(),
            "counters": self.counters.to_dict(),
            "merge": self.merge.to_dict(),
            "heldout_means": dict(self.heldout_means),
            "val_order": list(self.val_order),
            "chains": self.chains.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineState:
        return cls(
            target_modules=_strings(data["target_modules"]),
            train_ids=_strings(data["train_ids"]),
            val_ids=_strings(data["val_ids"]),
            heldout_ids=_strings(data["heldout_ids"]),
            candidates=[Candidate.from_dict(c) for c in data["candidates"]],
            memo={
                str(digest): {str(eid): MemoEntry.from_dict(e) for eid, e in rows.items()}
                for digest, rows in (data["memo"] or {}).items()
            },
            inputs={str(k): dict(v) for k, v in data["inputs"].items()},
            rejected_hashes=_strings(data["rejected_hashes"]),
            ledger=Ledger.from_dict(data["ledger"]),
            counters=Counters.from_dict(data["counters"]),
            merge=MergeBook.from_dict(data["merge"]),
            heldout_means={str(k): float(v) for k, v in data["heldout_means"].items()},
            # checkpoints written before staged validation existed have no order
            val_order=_strings(data.get("val_order", [])),
            chains=_chain_book(data.get("chains")),
        )


def _chain_book(data: Mapping[str, Any] | None = None) -> ChainBook:
    from gepa_cli.engine.chain import ChainBook

    return ChainBook.from_dict(data)


def _strings(values: Sequence[Any]) -> list[str]:
    return [str(v) for v in values]
