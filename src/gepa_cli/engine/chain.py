"""Chains of edits validated at their tip (``[gepa] validation = "adaptive"``).

Plain GEPA validates every child that passes its minibatch test. When minibatch gains
are real (most children that pass go on to beat their parent on validation), that
spends most of the budget validating children that differ from their parents on a
handful of examples. A chain keeps going instead: a child that passes its test
becomes the next parent without a validation, and only the tip of the chain is
validated, once the chain is `target` edits long. Its validation decides how long the
next chain may grow: a tip that beats the candidate its chain started from multiplies
the target by four, one that does not halves it (growing fast and shrinking slower
measured best across the quality suite's pairs: bench/results/quality_suite.md). On a
task where minibatch gains do not survive validation the target falls to 1, and the
run is plain GEPA again; where they
do, chains grow and validations become rare. A tip is the only thing validated, so
nothing enters the frontier, and nothing is reported best, without a full validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gepa_cli.engine.registry import register
from gepa_cli.engine.state import Candidate
from gepa_cli.engine.validation import FullValidation

if TYPE_CHECKING:
    from gepa_cli.engine.settings import EngineSettings

MAX_TARGET = 64  # the longest chain between two validations
GROWTH = 4  # how much longer the next chain may grow after a tip that beat its root


@dataclass
class Chain:
    """Edits that passed their minibatch tests since the chain's root, not validated."""

    root_id: str  # the validated candidate the chain grew from
    tip: str  # the proposal id that wrote the tip: how the tip's rollouts are named
    texts: dict[str, str]
    content_hash: str
    next_component: int
    length: int  # edits so far
    proposal_ids: list[str] = field(default_factory=list)  # of every edit, in order
    # the verdict of the last edit's minibatch test (the accepted event reports it)
    verdict: dict[str, Any] = field(default_factory=dict)

    def tip_candidate(self) -> Candidate:
        """The tip in the shape of a parent (it is never registered as one)."""
        return Candidate(
            id=self.root_id,
            texts=dict(self.texts),
            content_hash=self.content_hash,
            parents=[self.root_id],
            origin="reflection",
            iteration=0,
            next_component=self.next_component,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "root_id": self.root_id,
            "tip": self.tip,
            "texts": dict(self.texts),
            "content_hash": self.content_hash,
            "next_component": self.next_component,
            "length": self.length,
            "proposal_ids": list(self.proposal_ids),
            "verdict": dict(self.verdict),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chain:
        return cls(
            root_id=str(data["root_id"]),
            tip=str(data["tip"]),
            texts={str(k): str(v) for k, v in data["texts"].items()},
            content_hash=str(data["content_hash"]),
            next_component=int(data["next_component"]),
            length=int(data["length"]),
            proposal_ids=[str(p) for p in data["proposal_ids"]],
            verdict=dict(data["verdict"]),
        )


@dataclass
class ChainBook:
    """The open chain, if any, and how long the next one may grow."""

    chain: Chain | None = None
    target: int = 1
    tips: int = 0  # tips validated
    improved: int = 0  # of those, tips that beat their chain's root

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": None if self.chain is None else self.chain.to_dict(),
            "target": self.target,
            "tips": self.tips,
            "improved": self.improved,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ChainBook:
        if not data:
            return cls()
        chain = data.get("chain")
        return cls(
            chain=None if chain is None else Chain.from_dict(chain),
            target=int(data["target"]),
            tips=int(data["tips"]),
            improved=int(data["improved"]),
        )


class AdaptiveValidation(FullValidation):
    """Validates the tip of a chain once it is `ChainBook.target` edits long, and
    adapts that target to whether tips beat their roots (see the module docstring)."""

    name = "adaptive"

    def wants_validation(self, length: int, book: ChainBook) -> bool:
        return length >= book.target

    def record_tip(self, book: ChainBook, improved: bool) -> None:
        book.tips += 1
        if improved:
            book.improved += 1
            book.target = min(MAX_TARGET, GROWTH * book.target)
        else:
            book.target = max(1, book.target // 2)


@register("validation", AdaptiveValidation.name)
def _adaptive(_settings: EngineSettings) -> AdaptiveValidation:
    return AdaptiveValidation()
