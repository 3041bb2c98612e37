"""The state of an online session, folded from its event feed (docs/events.md, "Online").

One fold serves three readers: the live session applies every event it writes, a
restarted service rebuilds the session by applying the whole feed, and `events replay`
folds a session's feed the same way. It holds only what decisions need (candidates,
their reward statistics and usage, the lifecycle, the traffic shares, the learning
budget): nothing per rollout, so its size does not grow with traffic.

Pure: no IO, no clock. Decisions are made elsewhere (gepa_cli.online) and recorded as
events; the fold only applies what was recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from gepa_cli.artifacts import layout

SESSION_CREATED = "session.created"
SESSION_PAUSED = "session.paused"
SESSION_RESUMED = "session.resumed"
SESSION_CANCELLED = "session.cancelled"
SESSION_COMPLETED = "session.completed"
SESSION_FAILED = "session.failed"
SESSION_RESTORED = "session.restored"
ROLLOUT_SERVED = "rollout.served"
REWARD_RECORDED = "reward.recorded"
REFLECTION_STARTED = "reflection.started"
CANDIDATE_COMPARED = "candidate.compared"
CANDIDATE_PROMOTED = "candidate.promoted"
CANDIDATE_RETIRED = "candidate.retired"
TRAFFIC_UPDATED = "traffic.updated"
# shared with offline runs, same data shapes where they overlap (docs/events.md)
CANDIDATE_REGISTERED = "candidate.registered"
CANDIDATE_VALIDATED = "candidate.validated"
CANDIDATE_DUPLICATE = "candidate.duplicate"
PROPOSAL_COMPLETED = "proposal.completed"
PROPOSAL_FAILED = "proposal.failed"
FRONTIER_UPDATED = "frontier.updated"

SESSION_EVENT_TYPES = (
    SESSION_CREATED,
    SESSION_PAUSED,
    SESSION_RESUMED,
    SESSION_CANCELLED,
    SESSION_COMPLETED,
    SESSION_FAILED,
    SESSION_RESTORED,
    ROLLOUT_SERVED,
    REWARD_RECORDED,
    REFLECTION_STARTED,
    CANDIDATE_COMPARED,
    CANDIDATE_PROMOTED,
    CANDIDATE_RETIRED,
    TRAFFIC_UPDATED,
    CANDIDATE_REGISTERED,
    CANDIDATE_VALIDATED,
    CANDIDATE_DUPLICATE,
    PROPOSAL_COMPLETED,
    PROPOSAL_FAILED,
    FRONTIER_UPDATED,
)

ACTIVE, PAUSED = "active", "paused"
COMPLETED, CANCELLED, FAILED = "completed", "cancelled", "failed"
TERMINAL = (COMPLETED, CANCELLED, FAILED)
STATES = (ACTIVE, PAUSED, *TERMINAL)
# the split of an online rollout in rollouts.jsonl and in the budget's rollout counts
ONLINE_SPLIT = "online"
# which events account for the rows of each ledger of a session: a row is written just
# before its event (the commit record), so a ledger holds exactly these events' rows,
# plus at most the row of an event still being written (or cut by a crash)
ROWS_OF = {
    layout.ROLLOUTS: (ROLLOUT_SERVED,),
    layout.REWARDS: (REWARD_RECORDED,),
    layout.PROPOSALS: (PROPOSAL_COMPLETED, PROPOSAL_FAILED),
    layout.CANDIDATES: (CANDIDATE_VALIDATED,),
}


class FoldError(ValueError):
    """An event the fold cannot apply (the feed is not a session's, or is damaged)."""


@dataclass
class RewardStats:
    """Running mean and variance (Welford), in the order rewards were recorded."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    objective_sums: dict[str, float] = field(default_factory=dict)

    def add(self, score: float, objectives: Mapping[str, float]) -> None:
        self.n += 1
        delta = score - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (score - self.mean)
        for name, value in objectives.items():
            self.objective_sums[name] = self.objective_sums.get(name, 0.0) + float(value)

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    def objective_means(self) -> dict[str, float]:
        return {k: v / self.n for k, v in sorted(self.objective_sums.items())} if self.n else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "rewards": self.n,
            "mean": self.mean if self.n else None,
            "stdev": math.sqrt(self.variance) if self.n > 1 else None,
            "objective_means": self.objective_means(),
        }


@dataclass
class UsageStats:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True

    def add(self, usage: Mapping[str, Any]) -> None:
        self.calls += 1
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        self.cost_usd += float(usage.get("cost_usd") or 0.0)
        self.cost_known = self.cost_known and usage.get("cost_known", True) is not False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "cost_known": self.cost_known,
        }


@dataclass
class SessionCandidate:
    id: str
    texts: dict[str, str]
    content_hash: str
    origin: str
    parents: list[str]
    proposal_id: str | None
    role: str  # incumbent | challenger | retired | candidate (a former incumbent)
    served: int = 0
    failed: int = 0
    rewards: RewardStats = field(default_factory=RewardStats)
    usage: UsageStats = field(default_factory=UsageStats)
    looks: int = 0  # comparisons made while it was a challenger
    # set once, by its candidate.validated event (the evidence of its decision)
    val_mean: float | None = None
    val_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_id": self.id,
            "role": self.role,
            "origin": self.origin,
            "parents": self.parents,
            "proposal_id": self.proposal_id,
            "content_hash": self.content_hash,
            "served": self.served,
            "failed": self.failed,
            **self.rewards.to_dict(),
            "usage": self.usage.to_dict(),
            "looks": self.looks,
            "texts": self.texts,
        }


@dataclass
class SessionFold:
    session_id: str | None = None
    created: dict[str, Any] | None = None
    state: str | None = None
    state_history: list[dict[str, Any]] = field(default_factory=list)
    stopped_by: str | None = None
    error: dict[str, Any] | None = None
    candidates: dict[str, SessionCandidate] = field(default_factory=dict)
    incumbent_id: str | None = None
    challengers: list[str] = field(default_factory=list)
    shares: dict[str, float] = field(default_factory=dict)
    # cancel may pin a candidate to serve instead of the incumbent
    pinned_id: str | None = None
    served: int = 0
    served_while_learning: int = 0
    serial: int = 0  # the highest rollout serial recorded
    rewards: int = 0
    usage: UsageStats = field(default_factory=UsageStats)  # upstream calls
    proposal_usage: UsageStats = field(default_factory=UsageStats)  # proposer calls
    proposals: int = 0
    max_proposal_tokens: int = 0
    max_proposal_cost: float = 0.0
    reflections: int = 0
    consecutive_proposer_failures: int = 0
    pending_reflection: dict[str, Any] | None = None
    # rewards of the incumbent since its last reflection (or its promotion)
    incumbent_rewards_since_reflection: int = 0
    hashes: dict[str, str] = field(default_factory=dict)  # content hash -> candidate id
    frontier: dict[str, Any] | None = None
    validated: int = 0
    epoch: int = 0  # how many times a service opened the session again
    events: int = 0

    # -- reading ----------------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def serving_id(self) -> str | None:
        """The candidate every call goes to when no challenger gets traffic."""
        return self.pinned_id or self.incumbent_id

    def candidate(self, candidate_id: str) -> SessionCandidate:
        try:
            return self.candidates[candidate_id]
        except KeyError:
            raise FoldError(f"unknown candidate {candidate_id!r}") from None

    def budget(self) -> dict[str, Any]:
        """What the session used, in the shape of an offline run's budget."""
        return {
            "rollouts": {ONLINE_SPLIT: self.served, "total": self.served},
            "proposals": self.proposals,
            "tokens": self.usage.tokens + self.proposal_usage.tokens,
            "cost_usd": self.usage.cost_usd + self.proposal_usage.cost_usd,
            "cost_known": self.usage.cost_known and self.proposal_usage.cost_known,
        }

    def summary(self) -> dict[str, Any]:
        """The session as the API, the manifest and `events replay` report it."""
        return {
            "session_id": self.session_id,
            "state": self.state,
            "stopped_by": self.stopped_by,
            "error": self.error,
            "incumbent_id": self.incumbent_id,
            "challengers": list(self.challengers),
            "pinned_id": self.pinned_id,
            "shares": dict(self.shares),
            "served": self.served,
            "served_while_learning": self.served_while_learning,
            "rewards": self.rewards,
            "proposals": self.proposals,
            "reflection_in_flight": self.pending_reflection is not None,
            "usage": {"upstream": self.usage.to_dict(), "proposer": self.proposal_usage.to_dict()},
            "budget": self.budget(),
            "state_history": list(self.state_history),
        }

    # -- snapshots: the fold as JSON data, so a restart folds only what came after -----

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> SessionFold:
        """The fold a `snapshot` was taken of; a shape that does not fit is `FoldError`."""
        try:
            values = {f.name: data[f.name] for f in fields(cls)}
            values["usage"] = UsageStats(**values["usage"])
            values["proposal_usage"] = UsageStats(**values["proposal_usage"])
            values["candidates"] = {
                cid: SessionCandidate(
                    **{
                        **c,
                        "rewards": RewardStats(**c["rewards"]),
                        "usage": UsageStats(**c["usage"]),
                    }
                )
                for cid, c in dict(values["candidates"]).items()
            }
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise FoldError(f"not a session fold snapshot ({exc})") from None

    # -- folding ----------------------------------------------------------------------

    def apply(self, kind: str, data: Mapping[str, Any]) -> None:
        """Apply one event; raises `FoldError` when it does not fit the state."""
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is None:
            raise FoldError(f"{kind!r} is not an online session event")
        if self.created is None and kind != SESSION_CREATED:
            raise FoldError(f"{kind} before session.created")
        try:
            handler(data)
        except (KeyError, TypeError) as exc:
            raise FoldError(f"{kind} lacks or mistypes data.{exc}") from None
        self.events += 1

    def _enter(self, state: str, data: Mapping[str, Any]) -> None:
        self.state = state
        entry = {"state": state}
        for key in ("reason", "stopped_by", "at"):
            if data.get(key) is not None:
                entry[key] = data[key]
        self.state_history.append(entry)

    def _session_created(self, data: Mapping[str, Any]) -> None:
        if self.created is not None:
            raise FoldError("a second session.created")
        self.created = dict(data)
        self.session_id = data.get("session_id")
        self._enter(ACTIVE, data)

    def _session_paused(self, data: Mapping[str, Any]) -> None:
        self._enter(PAUSED, data)

    def _session_resumed(self, data: Mapping[str, Any]) -> None:
        self._enter(ACTIVE, data)

    def _session_cancelled(self, data: Mapping[str, Any]) -> None:
        self.stopped_by = "cancelled"
        self.pinned_id = data.get("serve_candidate_id")
        self._enter(CANCELLED, data)

    def _session_completed(self, data: Mapping[str, Any]) -> None:
        self.stopped_by = str(data["stopped_by"])
        self._enter(COMPLETED, data)

    def _session_failed(self, data: Mapping[str, Any]) -> None:
        self.stopped_by = str(data["error_code"])
        self.error = {"error_code": data["error_code"], "message": data.get("message")}
        self._enter(FAILED, data)

    def _session_restored(self, data: Mapping[str, Any]) -> None:
        self.epoch = int(data["epoch"])

    def _candidate_registered(self, data: Mapping[str, Any]) -> None:
        cid = str(data["candidate_id"])
        if cid in self.candidates:
            raise FoldError(f"registers {cid} a second time")
        origin = str(data["origin"])
        role = "incumbent" if origin == "seed" else "challenger"
        self.candidates[cid] = SessionCandidate(
            id=cid,
            texts=dict(data["texts"]),
            content_hash=str(data["content_hash"]),
            origin=origin,
            parents=list(data["parents"]),
            proposal_id=data.get("proposal_id"),
            role=role,
        )
        self.hashes[str(data["content_hash"])] = cid
        if role == "incumbent":
            self.incumbent_id = cid
        else:
            self.challengers.append(cid)

    def _traffic_updated(self, data: Mapping[str, Any]) -> None:
        self.shares = {str(k): float(v) for k, v in dict(data["shares"]).items()}

    def _rollout_served(self, data: Mapping[str, Any]) -> None:
        candidate = self.candidate(str(data["candidate_id"]))
        self.served += 1
        self.serial = max(self.serial, int(data["serial"]))
        candidate.served += 1
        if data.get("status") != "completed":
            candidate.failed += 1
        usage = data.get("usage") or {}
        candidate.usage.add(usage)
        self.usage.add(usage)
        if data.get("learning"):
            self.served_while_learning += 1

    def _reward_recorded(self, data: Mapping[str, Any]) -> None:
        candidate = self.candidate(str(data["candidate_id"]))
        candidate.rewards.add(float(data["score"]), dict(data.get("objectives") or {}))
        self.rewards += 1
        if candidate.id == self.incumbent_id:
            self.incumbent_rewards_since_reflection += 1

    def _reflection_started(self, data: Mapping[str, Any]) -> None:
        if self.pending_reflection is not None:
            raise FoldError("a reflection started while another was in flight")
        self.pending_reflection = dict(data)
        self.reflections += 1
        self.incumbent_rewards_since_reflection = 0

    def _end_reflection(self, data: Mapping[str, Any]) -> None:
        self.proposals += 1
        usage = data.get("usage") or {}
        self.proposal_usage.add(usage)
        tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        self.max_proposal_tokens = max(self.max_proposal_tokens, tokens)
        self.max_proposal_cost = max(self.max_proposal_cost, float(usage.get("cost_usd") or 0))
        self.pending_reflection = None

    def _proposal_completed(self, data: Mapping[str, Any]) -> None:
        self._end_reflection(data)
        self.consecutive_proposer_failures = 0

    def _proposal_failed(self, data: Mapping[str, Any]) -> None:
        self._end_reflection(data)
        self.consecutive_proposer_failures = int(data["consecutive_failures"])

    def _candidate_duplicate(self, data: Mapping[str, Any]) -> None:
        return None

    def _candidate_compared(self, data: Mapping[str, Any]) -> None:
        self.candidate(str(data["candidate_id"])).looks += 1

    def _candidate_promoted(self, data: Mapping[str, Any]) -> None:
        cid = str(data["candidate_id"])
        candidate = self.candidate(cid)
        if self.incumbent_id is not None:
            self.candidate(self.incumbent_id).role = "candidate"
        if cid in self.challengers:
            self.challengers.remove(cid)
        candidate.role = "incumbent"
        self.incumbent_id = cid
        self.incumbent_rewards_since_reflection = 0

    def _candidate_retired(self, data: Mapping[str, Any]) -> None:
        cid = str(data["candidate_id"])
        self.candidate(cid).role = "retired"
        if cid in self.challengers:
            self.challengers.remove(cid)

    def _candidate_validated(self, data: Mapping[str, Any]) -> None:
        candidate = self.candidate(str(data["candidate_id"]))
        if candidate.val_count is not None:
            raise FoldError(f"validates {candidate.id} a second time")
        candidate.val_mean = float(data["val_mean"])
        candidate.val_count = int(data["val_count"])
        self.validated += 1

    def _frontier_updated(self, data: Mapping[str, Any]) -> None:
        self.frontier = dict(data)


def is_session_feed_start(kind: str) -> bool:
    return kind == SESSION_CREATED
