"""How a session learns: compare challengers, reflect on rewarded traffic, propose.

After every reward (while the session is active) the learner

1. makes every comparison that is due (policy.py), promoting or retiring challengers;
2. reflects when there is room for a challenger and the incumbent has earned
   ``reflection_minibatch`` rewards since its last reflection: it reserves the proposal
   in the budget, records ``reflection.started`` with the rollouts it will show, and
   asks the proposer in the background (the same proposers and response cache as
   offline runs), so serving never waits for it;
3. completes the session when the budget allows no more proposals and no challenger
   is left to decide.

A proposal becomes a challenger unless its texts are those of a known candidate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.atomic import write_json_atomic
from gepa_cli.artifacts.schema import CandidateRow, ProposalRow
from gepa_cli.artifacts.schema import Usage as UsageRow
from gepa_cli.artifacts.session_fold import (
    ACTIVE,
    CANDIDATE_COMPARED,
    CANDIDATE_DUPLICATE,
    CANDIDATE_PROMOTED,
    CANDIDATE_REGISTERED,
    CANDIDATE_RETIRED,
    CANDIDATE_VALIDATED,
    COMPLETED,
    FRONTIER_UPDATED,
    PROPOSAL_COMPLETED,
    PROPOSAL_FAILED,
    REFLECTION_STARTED,
    SessionCandidate,
)
from gepa_cli.engine.state import content_hash
from gepa_cli.engine.types import ProposalRequest, ProposalResult, ReflectiveRecord, Usage
from gepa_cli.errors import GepaCliError, ProposerError
from gepa_cli.online.policy import compare, due_look
from gepa_cli.runtime.cache import make_response_cache
from gepa_cli.runtime.proposers import build_proposer

if TYPE_CHECKING:
    from gepa_cli.online.session import Session

log = logging.getLogger("gepa_cli.online")


class Learner:
    def __init__(self, session: Session, base_dir: Path) -> None:
        self.session = session
        self.config = session.config
        self.base_dir = base_dir
        self.cache = make_response_cache(self.config.cache)
        self._proposer: Any = None

    @property
    def proposer(self) -> Any:
        if self._proposer is None:
            self._proposer = build_proposer(self.config.proposer, self.cache, self.base_dir)
        return self._proposer

    # -- entry points -----------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: run an interrupted reflection again, make due decisions."""
        pending = self.session.fold.pending_reflection
        if pending is not None and self.session.fold.state == ACTIVE:
            self.session.spawn(self._propose(pending))
        self.after_reward()

    def after_reward(self) -> None:
        if self.session.fold.state != ACTIVE:
            return
        self._decide()
        self._maybe_reflect()

    def complete(self, stopped_by: str) -> None:
        self.end(COMPLETED)
        self.session.complete(stopped_by)

    def end(self, state: str) -> None:
        """Before a terminal state: retire the challengers and record every candidate's
        evidence, so each one has its candidates.jsonl row and the best is on the frontier."""
        fold = self.session.fold
        pending = fold.pending_reflection
        if pending is not None:
            # the proposer call may still run; whatever it answers is not learned from
            reason = f"session {state} while the proposer was working"
            self.session.emit(
                PROPOSAL_FAILED,
                {
                    "proposal_id": pending["proposal_id"],
                    "parent_id": pending["parent_id"],
                    "component": pending["component"],
                    "kind": "abandoned",
                    "reason": reason,
                    "consecutive_failures": fold.consecutive_proposer_failures,
                    "usage": Usage().to_dict(),
                },
                ledger=layout.PROPOSALS,
                row=ProposalRow(
                    proposal_id=str(pending["proposal_id"]),
                    parent_id=str(pending["parent_id"]),
                    component=str(pending["component"]),
                    usage=UsageRow.model_validate(Usage().to_dict()),
                    cost_usd=0.0,
                    outcome=f"abandoned: {reason}",
                ),
            )
        for cid in list(fold.challengers):
            self._validate(fold.candidate(cid))
            self.session.emit(
                CANDIDATE_RETIRED, {"candidate_id": cid, "reason": f"session_{state}"}
            )
        if fold.incumbent_id is not None:
            incumbent = fold.candidate(fold.incumbent_id)
            if incumbent.val_count is None and incumbent.rewards.n:
                self._validate(incumbent)
                self._frontier(incumbent)

    # -- comparisons ------------------------------------------------------------------

    def _decide(self) -> None:
        fold = self.session.fold
        while fold.challengers and self._decide_one():
            pass
        self.session.retraffic()

    def _decide_one(self) -> bool:
        """Make the due comparisons; True when one promoted a challenger (so the others
        are compared with the new incumbent next)."""
        session, fold, settings = self.session, self.session.fold, self.config.online
        for cid in list(fold.challengers):
            incumbent_id = fold.incumbent_id
            assert incumbent_id is not None
            incumbent, challenger = fold.candidate(incumbent_id), fold.candidate(cid)
            if incumbent.rewards.n < settings.min_rewards:
                return False
            look = due_look(challenger.looks, challenger.rewards.n, settings)
            if look is None:
                continue
            result = compare(
                cid, challenger.rewards, incumbent_id, incumbent.rewards, look, settings
            )
            session.emit(CANDIDATE_COMPARED, result.to_event())
            if result.decision == "promote":
                self._validate(challenger)
                self._validate(incumbent)
                session.emit(
                    CANDIDATE_PROMOTED,
                    {"candidate_id": cid, "previous_id": incumbent_id, "look": look},
                )
                self._frontier(challenger)
                return True
            if result.decision.startswith("retire"):
                self._validate(challenger)
                session.emit(
                    CANDIDATE_RETIRED,
                    {"candidate_id": cid, "reason": result.decision.removeprefix("retire_")},
                )
        return False

    def _validate(self, candidate: SessionCandidate) -> None:
        if candidate.val_count is not None:
            return
        stats = candidate.rewards
        row = CandidateRow(
            candidate_id=candidate.id,
            content_hash=candidate.content_hash,
            parents=candidate.parents,
            origin=candidate.origin,
            proposal_id=candidate.proposal_id,
            texts=candidate.texts,
            val_mean=stats.mean,
            val_count=stats.n,
            objective_means=stats.objective_means(),
        )
        self.session.emit(
            CANDIDATE_VALIDATED,
            {
                "candidate_id": candidate.id,
                "val_mean": stats.mean,
                "val_count": stats.n,
                "objective_means": stats.objective_means(),
            },
            ledger=layout.CANDIDATES,
            row=row,
        )

    def _frontier(self, best: SessionCandidate) -> None:
        assert best.val_mean is not None
        data = {
            "frontier_type": "online",
            "frontier": {"online": [best.id]},
            "best_scores": {"online": best.val_mean},
            "best_candidate_id": best.id,
            "best_val_mean": best.val_mean,
        }
        # the file before its event, as a ledger row before its event: a crash between
        # the two leaves a file the feed does not account for, which a restart rewrites
        write_json_atomic(self.session.root / layout.FRONTIER, data)
        self.session.emit(FRONTIER_UPDATED, data)

    # -- reflection -------------------------------------------------------------------

    def blocked_by(self) -> str | None:
        """The learning budget that one more proposal would pass, if any."""
        budgets, fold = self.config.gepa, self.session.fold
        if budgets.max_proposals is not None and fold.proposals + 1 > budgets.max_proposals:
            return "max_proposals"
        if budgets.max_tokens is not None:
            need = max(budgets.est_tokens_per_proposal, fold.max_proposal_tokens)
            if fold.proposal_usage.tokens + need > budgets.max_tokens:
                return "max_tokens"
        if budgets.max_cost_usd is not None:
            need_cost = max(budgets.est_cost_per_proposal_usd, fold.max_proposal_cost)
            if fold.proposal_usage.cost_usd + need_cost > budgets.max_cost_usd + 1e-12:
                return "max_cost_usd"
        if (
            budgets.max_wall_seconds is not None
            and self.session.elapsed_seconds() >= budgets.max_wall_seconds
        ):
            return "max_wall_seconds"
        return None

    def _maybe_reflect(self) -> None:
        session, fold, settings = self.session, self.session.fold, self.config.online
        if fold.state != ACTIVE or fold.pending_reflection is not None:
            return
        blocked = self.blocked_by()
        if blocked is not None:
            if not fold.challengers:
                self.complete(blocked)
            return
        if len(fold.challengers) >= settings.max_challengers:
            return
        if fold.incumbent_rewards_since_reflection < settings.reflection_minibatch:
            return
        assert fold.incumbent_id is not None
        chosen = session.index.latest_rewarded(fold.incumbent_id, settings.reflection_minibatch)
        modules = self.config.target_modules
        component = modules[fold.reflections % len(modules)]
        budgets = self.config.gepa
        pending = {
            "proposal_id": f"p{fold.reflections + 1:04d}",
            "parent_id": fold.incumbent_id,
            "component": component,
            "rollout_ids": [r.rollout_id for r in chosen],
            "reserved": {
                "proposals": 1,
                "tokens": max(budgets.est_tokens_per_proposal, fold.max_proposal_tokens),
                "cost_usd": max(budgets.est_cost_per_proposal_usd, fold.max_proposal_cost),
            },
        }
        session.emit(REFLECTION_STARTED, pending)
        session.spawn(self._propose(pending))

    def records(self, rollout_ids: list[str]) -> list[ReflectiveRecord]:
        """Messages in, answer out, reward and feedback of each rollout, from the ledgers."""
        out = []
        for rollout_id in rollout_ids:
            found = self.session.index.get(rollout_id)
            if found is None or found.reward_offset is None:
                continue
            rollout = self.session.log.read_row(layout.ROLLOUTS, found.row_offset)
            reward = self.session.log.read_row(layout.REWARDS, found.reward_offset)
            out.append(
                ReflectiveRecord(
                    example_id=rollout_id,
                    inputs=rollout.get("inputs") or {},
                    output=rollout.get("output") or "",
                    score=float(reward["score"]),
                    feedback=str(reward.get("feedback") or ""),
                )
            )
        return out

    async def _propose(self, pending: dict[str, Any]) -> None:
        session, fold = self.session, self.session.fold
        parent = fold.candidate(str(pending["parent_id"]))
        component = str(pending["component"])
        request = ProposalRequest(
            parent_id=parent.id,
            component=component,
            current_text=parent.texts[component],
            candidate=parent.texts,
            records=self.records(list(pending["rollout_ids"])),
            proposal_id=str(pending["proposal_id"]),
        )
        try:
            result: ProposalResult | None = await self.proposer.propose(request)
            error: GepaCliError | None = None
        except GepaCliError as exc:
            result, error = None, exc
        if fold.pending_reflection != pending:
            return  # abandoned when the session ended meanwhile: nothing more is recorded
        self._record_proposal(pending, parent, result, error)
        if error is not None and fold.consecutive_proposer_failures >= (
            self.config.gepa.max_consecutive_proposer_failures
        ):
            session.fail(
                ProposerError(
                    f"{fold.consecutive_proposer_failures} proposer calls failed in a row; "
                    f"last: {error.one_line()}",
                    hint="fix [proposer] and create a new session; serving goes on with the best",
                )
            )
            return
        session.retraffic()
        self.after_reward()

    def _record_proposal(
        self,
        pending: dict[str, Any],
        parent: SessionCandidate,
        result: ProposalResult | None,
        error: GepaCliError | None,
    ) -> None:
        session, fold = self.session, self.session.fold
        pid, component = str(pending["proposal_id"]), str(pending["component"])
        usage = result.usage if result is not None else Usage()
        action = result.meta.get("cache_action") if result is not None else None
        base = {"proposal_id": pid, "parent_id": parent.id, "component": component}
        new_text = result.new_text if result is not None else None
        if new_text is None:
            kind = "error" if error is not None else "rejection"
            reason = (
                error.one_line() if error is not None else str(result.rejection if result else "")
            )
            row = ProposalRow(
                proposal_id=pid,
                parent_id=parent.id,
                component=component,
                prompt=result.prompt if result else None,
                raw_output=result.raw_output if result else None,
                usage=UsageRow.model_validate(usage.to_dict()),
                cost_usd=usage.cost_usd,
                cache_action=action,
                outcome=f"{kind}: {reason}",
            )
            session.emit(
                PROPOSAL_FAILED,
                {
                    **base,
                    "kind": kind,
                    "reason": reason,
                    "consecutive_failures": fold.consecutive_proposer_failures + 1,
                    "usage": usage.to_dict(),
                },
                ledger=layout.PROPOSALS,
                row=row,
            )
            return
        assert result is not None
        texts = {**parent.texts, component: new_text}
        digest = content_hash(texts)
        known = fold.hashes.get(digest)
        new_id = f"c{len(fold.candidates):04d}"
        row = ProposalRow(
            proposal_id=pid,
            parent_id=parent.id,
            component=component,
            prompt=result.prompt,
            raw_output=result.raw_output,
            usage=UsageRow.model_validate(usage.to_dict()),
            cost_usd=usage.cost_usd,
            cache_action=action,
            new_text=new_text,
            outcome="duplicate: known_candidate" if known else "challenger",
            candidate_id=known or new_id,
        )
        session.emit(
            PROPOSAL_COMPLETED,
            {**base, "text": new_text, "usage": usage.to_dict()},
            ledger=layout.PROPOSALS,
            row=row,
        )
        if known is not None:
            session.emit(
                CANDIDATE_DUPLICATE,
                {
                    "proposal_ids": [pid],
                    "parent_id": parent.id,
                    "content_hash": digest,
                    "reason": "known_candidate",
                },
            )
            return
        session.emit(
            CANDIDATE_REGISTERED,
            {
                "candidate_id": new_id,
                "content_hash": digest,
                "parents": [parent.id],
                "origin": "reflection",
                "iteration": None,
                "proposal_id": pid,
                "texts": texts,
            },
        )
