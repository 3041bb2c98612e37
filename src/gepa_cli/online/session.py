"""One online session: its run directory, its state, serving, rewards and lifecycle.

Everything the session decides is written as an event (row first, event last, see
store.py) and applied to its `SessionFold`, so the state in memory is always the fold of
the feed on disk. A restarted service builds the session with `Session.open`: fold the
feed, cut the ledgers back to what it accounts for, catch the index up, and carry on
(an interrupted reflection is run again; a due comparison is made).

Lifecycle (docs/online.md): ``active`` <-> ``paused``; either -> ``cancelled``;
``active`` -> ``completed`` (a learning budget is spent) or ``failed`` (the proposer
kept failing). The last three are terminal: nothing leaves them, serving goes on with
the best (or the candidate a cancel pinned) and no more learning is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gepa_cli.artifacts import RunLock, layout, write_json_atomic
from gepa_cli.artifacts.events import utc_now
from gepa_cli.artifacts.schema import ResolvedConfigDoc, RewardRow, RolloutRow, read_document
from gepa_cli.artifacts.schema import Usage as UsageRow
from gepa_cli.artifacts.session_fold import (
    ACTIVE,
    CANCELLED,
    CANDIDATE_REGISTERED,
    FAILED,
    ONLINE_SPLIT,
    PAUSED,
    REWARD_RECORDED,
    ROLLOUT_SERVED,
    SESSION_CANCELLED,
    SESSION_COMPLETED,
    SESSION_CREATED,
    SESSION_FAILED,
    SESSION_PAUSED,
    SESSION_RESTORED,
    SESSION_RESUMED,
    TERMINAL,
    TRAFFIC_UPDATED,
    FoldError,
    SessionFold,
)
from gepa_cli.engine.state import content_hash
from gepa_cli.engine.types import Usage
from gepa_cli.errors import GepaCliError
from gepa_cli.online.config import OnlineConfig
from gepa_cli.online.errors import (
    InvalidRewardError,
    LifecycleConflictError,
    RewardConflictError,
    SessionStateError,
    UnknownRolloutError,
)
from gepa_cli.online.index import RolloutIndex, Snapshot, reward_key
from gepa_cli.online.policy import choose, traffic_shares, unit_draw
from gepa_cli.online.store import SessionLog, iter_feed
from gepa_cli.online.upstream import Upstream

log = logging.getLogger("gepa_cli.online")
FLUSH_SECONDS = 0.25
SNAPSHOT_SECONDS = 1.0


@dataclass(frozen=True)
class Route:
    """Where one call goes: its rollout id and the candidate whose texts it carries."""

    rollout_id: str
    serial: int
    candidate_id: str
    texts: Mapping[str, str]
    learning: bool


def _stamp_seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return None


class Session:
    def __init__(self, config: OnlineConfig, root: Path, index_path: Path) -> None:
        self.config = config
        self.root = root
        self.session_id = root.name
        self.fold = SessionFold()
        self.log = SessionLog(root, self.session_id)
        self.index = RolloutIndex(index_path, root)
        self.lock = RunLock(root, self.session_id)
        self.upstream = Upstream(config.upstream)
        self.inflight: set[str] = set()
        self.learning_inflight = 0
        self.epoch = 0
        self.next_serial = 1
        self.tasks: set[asyncio.Task[Any]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.learner: Any = None  # gepa_cli.online.learning.Learner, set by open/create
        self.counts: Counter[str] = Counter()  # events by type: what the ledgers must hold
        self._snapshot_at = 0.0
        self.log.after_sync.append(self._commit_index)

    # -- building ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        config: OnlineConfig,
        root: Path,
        index_path: Path,
        *,
        config_path: str | None = None,
        base_dir: Path,
        client: str | None = None,
    ) -> Session:
        if root.exists() and any(root.iterdir()):
            raise LifecycleConflictError(
                f"session directory {root} already exists", hint="pick another [run] run_id"
            )
        root.mkdir(parents=True, exist_ok=True)
        session = cls(config, root, index_path)
        session.lock.acquire()
        doc = ResolvedConfigDoc(
            config_path=config_path, base_dir=str(base_dir), config=config.resolved_dict()
        )
        write_json_atomic(root / layout.CONFIG_RESOLVED, doc.dump())
        Path(f"{index_path}").unlink(missing_ok=True)
        session.log.open({})
        session.index.open()
        session.index.catch_up()
        session._attach_learner(base_dir)
        session._emit(
            SESSION_CREATED,
            {
                "session_id": session.session_id,
                "created_at": utc_now(),
                "created_by": client,
                "target_modules": config.target_modules,
                "injection": config.online.injection,
                "system_module": config.system_module
                if config.online.injection != "placeholders"
                else None,
                "upstream_model": config.upstream.model,
                "rng_seed": config.run.seed,
                "settings": config.online.model_dump(mode="json"),
                "budgets": config.gepa.model_dump(mode="json"),
            },
        )
        texts = dict(config.seed_candidate)
        session._emit(
            CANDIDATE_REGISTERED,
            {
                "candidate_id": "c0000",
                "content_hash": content_hash(texts),
                "parents": [],
                "origin": "seed",
                "iteration": None,
                "proposal_id": None,
                "texts": texts,
            },
        )
        session.retraffic()
        session.log.fsync_now()
        return session

    @classmethod
    def open(cls, root: Path, index_path: Path) -> Session:
        """Rebuild a session from its run directory (after a restart or a crash)."""
        doc = read_document(
            root / layout.CONFIG_RESOLVED, ResolvedConfigDoc, error=SessionStateError
        )
        if doc is None:
            raise SessionStateError(f"{root} has no {layout.CONFIG_RESOLVED}: not a session")
        try:
            config = OnlineConfig.model_validate(doc.config)
        except ValueError as exc:
            raise SessionStateError(
                f"{root / layout.CONFIG_RESOLVED} is not a session config: {exc}"
            ) from None
        session = cls(config, root, index_path)
        session.lock.acquire()
        # the manifest of the last holder's stop describes the session as it was then;
        # from the first call on it would disagree with the feed, so it goes until this
        # holder lets go (workspace status tells a held session by its live lock)
        (root / layout.MANIFEST).unlink(missing_ok=True)
        session._fold_feed(session.index.open())
        session.log.open(session.counts)
        session.index.catch_up()
        session._attach_learner(Path(doc.base_dir or root))
        session.epoch = session.fold.epoch + 1
        session._emit(
            SESSION_RESTORED, {"epoch": session.epoch, "events": sum(session.counts.values())}
        )
        session.next_serial = session.fold.serial + 1
        # frontier.json as the feed has it (a crash may have written one it never recorded)
        if session.fold.frontier is not None:
            write_json_atomic(root / layout.FRONTIER, session.fold.frontier)
        else:
            (root / layout.FRONTIER).unlink(missing_ok=True)
        session.log.fsync_now()
        return session

    def _fold_feed(self, snapshot: Snapshot | None) -> None:
        """Rebuild the fold: from the index's snapshot when it fits the feed on disk, then
        the events after it (or the whole feed)."""
        start, first_seq = 0, 0
        feed = self.root / layout.EVENTS
        size = feed.stat().st_size if feed.exists() else 0
        if snapshot is not None and 0 < snapshot.events_size <= size:
            with open(feed, "rb") as handle:
                handle.seek(snapshot.events_size - 1)
                at_line_end = handle.read(1) == b"\n"
            try:
                fold = SessionFold.from_snapshot(snapshot.data["fold"])
                counts = Counter({str(k): int(v) for k, v in snapshot.data["counts"].items()})
            except (FoldError, KeyError, TypeError, ValueError, AttributeError):
                at_line_end = False
            if at_line_end and sum(counts.values()) == snapshot.next_seq:
                self.fold, self.counts = fold, counts
                start, first_seq = snapshot.events_size, snapshot.next_seq
        try:
            for kind, data in iter_feed(self.root, start=start, first_seq=first_seq):
                self.fold.apply(kind, data)
                self.counts[kind] += 1
        except FoldError as exc:
            raise SessionStateError(f"{feed}: {exc}") from None
        if self.fold.created is None:
            raise SessionStateError(f"{feed} has no session.created event")

    def _commit_index(self) -> None:
        """After each fsync: commit the index, with a snapshot of the fold at most once a
        second (a restart then folds only the events after it)."""
        snapshot = None
        now = time.monotonic()
        if now - self._snapshot_at >= SNAPSHOT_SECONDS or not self.log.files:
            self._snapshot_at = now
            snapshot = Snapshot(
                events_size=self.log.events_size,
                next_seq=self.log.next_seq,
                data={"fold": self.fold.snapshot(), "counts": dict(self.counts)},
            )
        self.index.commit(snapshot)

    def _attach_learner(self, base_dir: Path) -> None:
        from gepa_cli.online.learning import Learner

        self.learner = Learner(self, base_dir)

    def start(self) -> None:
        """Start background work: the periodic flush, an interrupted reflection, a due
        decision (called once the event loop runs)."""
        self._flusher = asyncio.create_task(self._flush_loop())
        self.learner.recover()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if self.log.pending:
                try:
                    await self.log.durable()
                except OSError:  # pragma: no cover - a full disk: the next request reports it
                    log.exception("session %s: fsync failed", self.session_id)

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in [self._flusher, *self.tasks]:
            if task is not None:
                task.cancel()
        for task in [self._flusher, *self.tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.upstream.close()
        self._snapshot_at = 0.0  # the last commit stores the fold as it is now
        self.log.fsync_now()
        self.log.close()
        self.index.close()
        from gepa_cli.online.manifest import write_session_manifest

        write_session_manifest(self)
        self.lock.release()

    # -- events -----------------------------------------------------------------------

    def emit(
        self, kind: str, data: Mapping[str, Any], *, ledger: str | None = None, row: Any = None
    ) -> int | None:
        """Write one decision (row first, then its event) and apply it to the fold."""
        return self._emit(kind, data, ledger=ledger, row=row)

    def _emit(
        self, kind: str, data: Mapping[str, Any], *, ledger: str | None = None, row: Any = None
    ) -> int | None:
        written = self.log.append(kind, data, ledger=ledger, row=row)
        self.fold.apply(kind, written.event["data"])
        self.counts[kind] += 1
        return written.row_offset

    def retraffic(self) -> None:
        shares = traffic_shares(self.fold, self.config.online)
        if shares != self.fold.shares:
            self._emit(
                TRAFFIC_UPDATED,
                {
                    "incumbent_id": self.fold.incumbent_id,
                    "serving_id": self.fold.serving_id,
                    "challengers": list(self.fold.challengers),
                    "shares": shares,
                },
            )

    # -- serving ----------------------------------------------------------------------

    def elapsed_seconds(self) -> float:
        created = _stamp_seconds((self.fold.created or {}).get("created_at"))
        return 0.0 if created is None else max(0.0, time.time() - created)

    def route(self) -> Route:
        """Pick the candidate for one call (reserving its place in the rollout budget)."""
        fold, budgets = self.fold, self.config.gepa
        if fold.state == ACTIVE:
            limit = budgets.max_total_rollouts
            if limit is not None and fold.served_while_learning + self.learning_inflight >= limit:
                self.learner.complete("max_total_rollouts")
            elif (
                budgets.max_wall_seconds is not None
                and self.elapsed_seconds() >= budgets.max_wall_seconds
            ):
                self.learner.complete("max_wall_seconds")
        serial = self.next_serial
        self.next_serial += 1
        candidate_id = choose(fold.shares, unit_draw(self.config.run.seed, serial))
        learning = fold.state == ACTIVE
        if learning:
            self.learning_inflight += 1
        rollout_id = f"r{self.epoch}-{serial:07d}"
        self.inflight.add(rollout_id)
        texts = fold.candidates[candidate_id].texts
        return Route(rollout_id, serial, candidate_id, texts, learning)

    def record_served(
        self,
        route: Route,
        *,
        status: str,
        inputs: Any,
        answer: str | None,
        usage: Usage,
        latency_ms: float,
        stream: bool,
        upstream_status: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record one served call (row, event, index). Called before the answer (or its
        last chunk) goes back, so a caller never holds a rollout id the files lack."""
        self.inflight.discard(route.rollout_id)
        if route.learning:
            self.learning_inflight -= 1
        usage_dict = usage.to_dict()
        row = RolloutRow(
            candidate_id=route.candidate_id,
            example_id=route.rollout_id,
            split=ONLINE_SPLIT,
            score=None,
            status=status,
            output=answer,
            inputs=inputs,
            usage=UsageRow.model_validate(usage_dict),
            error=error,
            cache_action="live",
            latency_ms=round(latency_ms, 3),
        )
        data: dict[str, Any] = {
            "rollout_id": route.rollout_id,
            "serial": route.serial,
            "candidate_id": route.candidate_id,
            "status": status,
            "stream": stream,
            "learning": route.learning and self.fold.state == ACTIVE,
            "usage": usage_dict,
            "latency_ms": round(latency_ms, 3),
        }
        if upstream_status is not None:
            data["upstream_status"] = upstream_status
        if error is not None:
            data["error"] = error
        offset = self._emit(ROLLOUT_SERVED, data, ledger=layout.ROLLOUTS, row=row)
        assert offset is not None
        self.index.add_rollout(route.rollout_id, route.candidate_id, status, offset)

    # -- rewards ----------------------------------------------------------------------

    async def reward(
        self,
        rollout_id: str,
        score: float,
        feedback: str | None = None,
        objectives: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Record a reward; return once it is durable. Same reward again: accepted, not
        recorded twice. A different one: 409. Unknown rollout: 404."""
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            raise InvalidRewardError(
                f"reward {score!r} for rollout {rollout_id} is not a finite number",
                hint="send a finite number as 'reward' (NaN and infinities are refused)",
            )
        objectives = dict(objectives or {})
        for name, value in objectives.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise InvalidRewardError(
                    f"objective {name!r} = {value!r} for rollout {rollout_id} "
                    "is not a finite number"
                )
        score = float(score)
        objectives = {k: float(v) for k, v in sorted(objectives.items())}
        key = reward_key(score, feedback, objectives)
        if rollout_id in self.inflight:
            raise RewardConflictError(
                f"rollout {rollout_id} is still being served",
                hint="post its reward once the answer (or the stream) has ended",
            )
        found = self.index.get(rollout_id)
        if found is None:
            raise UnknownRolloutError(
                f"session {self.session_id} has no rollout {rollout_id!r}",
                hint="use the x-gepa-rollout-id header of a call served by this session",
            )
        if found.rewarded:
            if found.reward_key != key:
                raise RewardConflictError(
                    f"rollout {rollout_id} already has a different reward",
                    hint="a reward is final; repeating the same one is accepted once",
                )
            await self.log.durable()
            return {"rollout_id": rollout_id, "candidate_id": found.candidate_id, "recorded": False}
        if found.status != "completed":
            raise RewardConflictError(
                f"rollout {rollout_id} has no answer to reward (it {found.status})",
                hint="only calls the upstream answered can be rewarded",
            )
        row = RewardRow(
            rollout_id=rollout_id,
            candidate_id=found.candidate_id,
            score=score,
            feedback=feedback,
            objectives=objectives,
        )
        offset = self._emit(
            REWARD_RECORDED,
            {
                "rollout_id": rollout_id,
                "candidate_id": found.candidate_id,
                "score": score,
                "objectives": objectives,
                "has_feedback": bool(feedback),
            },
            ledger=layout.REWARDS,
            row=row,
        )
        assert offset is not None
        self.index.add_reward(rollout_id, key, offset)
        self.learner.after_reward()
        await self.log.durable()
        return {"rollout_id": rollout_id, "candidate_id": found.candidate_id, "recorded": True}

    # -- lifecycle --------------------------------------------------------------------

    def _refuse(self, action: str, allowed: tuple[str, ...]) -> None:
        state = self.fold.state
        if state not in allowed:
            rule = (
                "a cancelled, completed or failed session is final"
                if state in TERMINAL
                else f"{action} needs a session that is {' or '.join(allowed)}"
            )
            raise LifecycleConflictError(
                f"session {self.session_id} is {state}: cannot {action}", hint=rule
            )

    async def pause(self, reason: str | None = None) -> None:
        self._refuse("pause", (ACTIVE,))
        self._emit(SESSION_PAUSED, {"reason": reason, "changed_at": utc_now()})
        self.retraffic()
        await self.log.durable()

    async def resume(self, reason: str | None = None) -> None:
        self._refuse("resume", (PAUSED,))
        self._emit(SESSION_RESUMED, {"reason": reason, "changed_at": utc_now()})
        self.retraffic()
        self.learner.after_reward()
        await self.log.durable()

    async def cancel(self, reason: str | None = None, serve: str | None = None) -> None:
        self._refuse("cancel", (ACTIVE, PAUSED))
        if serve is not None and serve not in self.fold.candidates:
            raise UnknownRolloutError(
                f"session {self.session_id} has no candidate {serve!r} to serve",
                hint="name one of GET .../candidates, or leave 'serve' out to serve the best",
            )
        self.learner.end(CANCELLED)
        self._emit(
            SESSION_CANCELLED,
            {"reason": reason, "serve_candidate_id": serve, "changed_at": utc_now()},
        )
        self.retraffic()
        await self.log.durable()

    def fail(self, error: GepaCliError) -> None:
        if self.fold.terminal:
            return
        self.learner.end(FAILED)
        self._emit(
            SESSION_FAILED,
            {"error_code": error.error_code, "message": error.one_line(), "changed_at": utc_now()},
        )
        self.retraffic()

    def complete(self, stopped_by: str) -> None:
        self._emit(SESSION_COMPLETED, {"stopped_by": stopped_by, "changed_at": utc_now()})
        self.retraffic()

    # -- reading ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        fold = self.fold
        return {
            **fold.summary(),
            "run_dir": str(self.root),
            "created_at": (fold.created or {}).get("created_at"),
            "created_by": (fold.created or {}).get("created_by"),
            "target_modules": self.config.target_modules,
            "injection": self.config.online.injection,
            "upstream_model": self.config.upstream.model,
            "events": self.log.next_seq,
        }

    def candidates(self) -> list[dict[str, Any]]:
        shares = self.fold.shares
        return [
            {
                **c.to_dict(),
                "share": shares.get(c.id, 0.0),
                "val_mean": c.val_mean,
                "val_count": c.val_count,
            }
            for c in self.fold.candidates.values()
        ]

    def prompt(self) -> dict[str, Any]:
        best = self.fold.candidate(self.fold.incumbent_id or "c0000")
        return {
            "session_id": self.session_id,
            "candidate_id": best.id,
            "texts": best.texts,
            "rewards": best.rewards.n,
            "mean": best.rewards.mean if best.rewards.n else None,
            "serving_id": self.fold.serving_id,
        }
