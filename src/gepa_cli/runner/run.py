"""One run, wired together: config -> container -> engine -> run directory -> manifest."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gepa_cli.artifacts import (
    EventWriter,
    RunDirectory,
    RunLock,
    RunRegistry,
    StateHistory,
    layout,
    write_manifest,
)
from gepa_cli.artifacts.events import utc_now
from gepa_cli.artifacts.schema import (
    CacheProfileDoc,
    ProposalRow,
    ResolvedConfigDoc,
    RunnerState,
    read_rows,
)
from gepa_cli.config import GepaConfig, load_config
from gepa_cli.engine import EngineResult, EngineSettings, GepaEngine, Lanes, MemoEntry
from gepa_cli.engine.reflection import RUN_DIR
from gepa_cli.errors import (
    CancelledError,
    ConfigError,
    ContainerError,
    GepaCliError,
    ProposerError,
)
from gepa_cli.runner.control import RunControl
from gepa_cli.runner.feed import FeedIndex
from gepa_cli.runner.manifest import build_manifest
from gepa_cli.runner.progress import LiveStats
from gepa_cli.runner.recorder import EventListener, RunRecorder, Spend
from gepa_cli.runner.resume import ResumePoint, load_resume_point, memo_from_rollouts
from gepa_cli.runtime.cache import FileResponseCache, make_response_cache, restore_profile
from gepa_cli.runtime.container import ContainerSession
from gepa_cli.runtime.container.evaluator import THEN_CONTINUE
from gepa_cli.runtime.proposers import build_proposer

# CLI flag / keyword -> config field they override
OVERRIDE_FIELDS = {
    "run_id": "run.run_id",
    "output_dir": "run.output_dir",
    "cache_mode": "cache.mode",
    "cache_path": "cache.path",
}

INTERRUPTS = ("interrupted", "terminated")


@dataclass(frozen=True)
class RunResult:
    """The manifest of a finished (or stopped) run, with its directory."""

    run_dir: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def state(self) -> str:
        return str(self.manifest["state"])

    @property
    def stopped_by(self) -> str | None:
        return self.manifest.get("stopped_by")

    @property
    def best_candidate(self) -> dict[str, Any] | None:
        return self.manifest.get("best_candidate")

    @property
    def seed_candidate(self) -> dict[str, Any] | None:
        return self.manifest.get("seed_candidate")

    def __getitem__(self, key: str) -> Any:
        return self.manifest[key]


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


class GepaRun:
    """``GepaRun.from_toml("gepa.toml").execute()`` runs one optimization to its end."""

    def __init__(
        self,
        config: GepaConfig,
        *,
        config_path: Path | None = None,
        base_dir: Path | None = None,
        resume_from: ResumePoint | None = None,
        app: Any = None,
    ) -> None:
        """``app``: an ASGI app object to serve in-process as the container, in place of
        [container] url/app/command (load such a config with ``app_object=True``)."""
        container = config.container
        if app is not None and (container.url or container.app or container.command):
            raise ConfigError(
                "an app object is given to GepaRun, and [container] also names a container",
                hint="remove url/app/command from [container], or do not pass app=",
            )
        self.app = app
        self.config = config
        self.config_path = config_path
        self.base_dir = base_dir or (config_path.resolve().parent if config_path else Path.cwd())
        self.resume_point = resume_from
        self.listeners: list[EventListener] = []
        self._live_stats: tuple[FileResponseCache, Spend] | None = None
        self._recorder: RunRecorder | None = None
        self._control: RunControl | None = None
        # the manifest of the last execution, also when it raised (a failed run's
        # manifest still holds its seed and best scores)
        self.last_result: RunResult | None = None

    @classmethod
    def from_toml(cls, path: str | Path, *, app: Any = None, **overrides: Any) -> GepaRun:
        unknown = sorted(set(overrides) - set(OVERRIDE_FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown override {unknown[0]!r}", hint=f"use one of {', '.join(OVERRIDE_FIELDS)}"
            )
        dotted = {OVERRIDE_FIELDS[key]: value for key, value in overrides.items()}
        path = Path(path).resolve()
        config = load_config(path, overrides=dotted, app_object=app is not None)
        return cls(config, config_path=path, app=app)

    @classmethod
    def resume(cls, run_dir: str | Path, *, config_path: str | Path | None = None) -> GepaRun:
        point = load_resume_point(Path(run_dir), Path(config_path) if config_path else None)
        return cls(
            point.config,
            config_path=point.config_path,
            base_dir=point.base_dir,
            resume_from=point,
        )

    def on_event(self, listener: EventListener) -> None:
        self.listeners.append(listener)

    def live_stats(self) -> LiveStats:
        """Cache hits, live spend and work under way, now (for progress displays)."""
        if self._live_stats is None or self._recorder is None:
            return LiveStats()
        cache, spend = self._live_stats
        live = self._recorder.live
        return LiveStats(
            cache_hits=int(cache.profile.to_dict()["totals"]["hits"]),
            spent_usd=spend.live_usd,
            spent_known=spend.live_known,
            rollouts_back=live.rollouts_back,
            proposing_seconds=live.proposing_seconds(),
            evaluating=live.splits_under_way(),
        )

    def elapsed_seconds(self) -> float:
        """The run's own clock (a resumed run goes on from where it stopped)."""
        return self._control.elapsed_seconds() if self._control is not None else 0.0

    def execute(self) -> RunResult:
        return asyncio.run(self.execute_async())

    async def execute_async(self) -> RunResult:
        opened = self._open()
        result: EngineResult | None = None
        error: GepaCliError | None = None
        try:
            with opened.control.signals_stop_the_run():
                result = await self._run_engine(opened)
        except GepaCliError as exc:
            error = exc
        except (KeyboardInterrupt, asyncio.CancelledError):
            error = CancelledError(
                f"run {opened.run_id} interrupted before its next safe point",
                hint=f"continue it with `gepa-cli gepa resume {opened.run_dir.root}`",
            )
        return self._finish(opened, result, error)

    def _open(self) -> _OpenRun:
        """Create (or reopen) the run directory and everything that writes into it."""
        config, point = self.config, self.resume_point
        if point is None:
            run_dir = RunDirectory.for_run(config.run.output_dir, config.run.run_id or new_run_id())
            run_dir.create()
            started_at, history = utc_now(), StateHistory()
        else:
            run_dir, started_at = point.run_dir, point.started_at
            history = StateHistory(point.state_history)
        lock = run_dir.run_lock()
        lock.acquire()
        history.enter("running")
        registry = RunRegistry(run_dir.runs_dir)
        registry.record(
            run_dir.run_id,
            run_dir.root,
            state="running",
            started_at=started_at,
            config=self.config_path,
        )
        if point is None:
            resolved = ResolvedConfigDoc(
                config_path=str(self.config_path) if self.config_path else None,
                base_dir=str(self.base_dir),
                config=config.resolved_dict(),
            )
            run_dir.write_document(run_dir.config_resolved, resolved)
        cache = make_response_cache(config.cache)
        spend = Spend()
        if point is not None:
            spend = Spend(point.runner.spend)
            saved_profile = point.runner.cache_profile
            restore_profile(cache, saved_profile.dump() if saved_profile is not None else None)
        self._live_stats = (cache, spend)
        ledgers = run_dir.open_ledgers(resume_from=point.ledgers if point else None)
        feed = FeedIndex()
        if point is not None:
            feed.fold_file(run_dir.events)  # already cut back to the checkpoint
        control = RunControl(
            run_dir.root,
            elapsed_before=point.runner.elapsed_seconds if point else 0.0,
        )
        opened = _OpenRun(run_dir, started_at, history, registry, lock, cache, spend, control)
        self._control = control

        def runner_state() -> RunnerState:
            return RunnerState(
                run_id=opened.run_id,
                started_at=started_at,
                elapsed_seconds=control.elapsed_seconds(),
                spend=spend.to_doc(),
                cache_profile=CacheProfileDoc.model_validate(cache.profile.to_dict()),
                state_history=list(history.changes),
            )

        opened.recorder = RunRecorder(
            run_dir,
            ledgers,
            EventWriter(ledgers.events, opened.run_id),
            spend=spend,
            runner_state=runner_state,
            listeners=tuple(self.listeners),
            feed=feed,
        )
        self._recorder = opened.recorder
        return opened

    def _finish(
        self, opened: _OpenRun, result: EngineResult | None, error: GepaCliError | None
    ) -> RunResult:
        """Close the ledgers and write the files that describe the end: last of all the
        manifest, whose digests cover everything else."""
        run_dir, recorder = opened.run_dir, opened.recorder
        finished = recorder.feed.finished
        if result is not None:
            stopped_by: str | None = result.stopped_by
        elif isinstance(error, CancelledError):
            stopped_by = opened.control.stop_requested() or "interrupted"
        elif finished is not None:
            stopped_by = str(finished["stopped_by"])
        else:
            stopped_by = error.error_code if error else None
        if error is None and stopped_by in INTERRUPTS:
            error = CancelledError(
                f"run {opened.run_id} stopped at a safe point after a signal ({stopped_by})",
                hint=f"continue it with `gepa-cli gepa resume {run_dir.root}`",
            )
        if isinstance(error, ProposerError) and error.hint and RUN_DIR in error.hint:
            # the engine cannot know where the run lives; say exactly what to type
            error = ProposerError(
                error.message, hint=error.hint.replace(RUN_DIR, str(run_dir.root)), **error.details
            )
        hint = error.hint if isinstance(error, ContainerError) else None
        if error is not None and hint is not None and hint.endswith(THEN_CONTINUE):
            # only the runner knows whether there is a checkpoint to resume from
            error = ContainerError(
                error.message,
                hint=hint[: -len(THEN_CONTINUE)] + _how_to_continue(run_dir),
                **error.details,
            )
        state = _final_state(stopped_by, error)
        outcome = result.outcome if result is not None else recorder.outcome(stopped_by or state)
        recorder.flush_unsettled()
        recorder.write_frontier()
        run_dir.write_document(
            run_dir.cache_profile, CacheProfileDoc.model_validate(opened.cache.profile.to_dict())
        )
        recorder.ledgers.close()
        run_dir.write_normalized_events()
        opened.history.enter(state)
        manifest = build_manifest(
            run_id=opened.run_id,
            config=self.config,
            config_path=str(self.config_path) if self.config_path else None,
            started_at=opened.started_at,
            finished_at=utc_now(),
            history=opened.history,
            stopped_by=stopped_by,
            outcome=outcome,
            spend=opened.spend,
            budget=recorder.last_budget,
            error=error,
            listener_errors=recorder.listener_errors,
            frontier=recorder.feed.frontier_summary(),
        )
        written = write_manifest(run_dir.root, manifest)
        opened.registry.record(
            opened.run_id,
            run_dir.root,
            state=state,
            started_at=opened.started_at,
            config=self.config_path,
        )
        run_dir.stop_file.unlink(missing_ok=True)  # honoured; a resume must not see it again
        opened.lock.release()
        # kept for a caller that reports what a failed run still found (its manifest)
        self.last_result = RunResult(run_dir.root, written.dump())
        if error is not None:
            raise error
        return self.last_result

    async def _run_engine(self, opened: _OpenRun) -> EngineResult:
        config, point = self.config, self.resume_point
        cache, recorder, control = opened.cache, opened.recorder, opened.control
        run_dir = opened.run_dir
        settings = EngineSettings.from_mapping(config.gepa.model_dump())
        workers = config.gepa.pipeline.workers
        lanes = Lanes(
            propose=workers.propose or settings.max_in_flight_candidates,
            evaluate=workers.evaluate,
        )
        if workers.rollout is not None:
            container = config.container.model_copy(
                update={"max_concurrency": min(config.container.max_concurrency, workers.rollout)}
            )
            config = config.model_copy(update={"container": container})
        session = ContainerSession(
            config,
            cache,
            base_dir=self.base_dir,
            log_dir=run_dir.root,
            live=config.cache.mode != "readonly",
            install_signal_handlers=False,
            app=self.app,
        )
        async with session:
            rollouts = session.evaluator()
            rollouts.on_rollout = recorder.live.rollout_back
            evaluator = recorder.recording_evaluator(rollouts)
            proposer = recorder.recording_proposer(
                build_proposer(config.proposer, cache, self.base_dir),
                f"proposer.{config.proposer.backend}",
            )
            if point is not None:
                state = point.snapshot.get("state") or {}
                memo = None if state.get("memo") is not None else opened.memo()
                engine = GepaEngine.restore(
                    point.snapshot,
                    evaluator,
                    proposer,
                    recorder,
                    control,
                    recorder,
                    settings=settings,
                    rollouts=recorder,
                    lanes=lanes,
                    memo=memo,
                )
            else:
                hs = session.handshake
                engine = GepaEngine(
                    settings,
                    evaluator,
                    proposer,
                    recorder,
                    control,
                    recorder,
                    train_ids=hs.example_ids("train"),
                    val_ids=hs.example_ids("val"),
                    heldout_ids=hs.example_ids("heldout"),
                    seed_texts=hs.seed_texts,
                    target_modules=list(hs.target_modules),
                    rng_seed=config.run.seed,
                    rollouts=recorder,
                    lanes=lanes,
                    # every rollout is in rollouts.jsonl, which resume rebuilds it from
                    memo_in_checkpoint=False,
                )
            return await engine.run()


class _OpenRun:
    """What one execution of a run holds open between its start and its manifest."""

    recorder: RunRecorder

    def __init__(
        self,
        run_dir: RunDirectory,
        started_at: str,
        history: StateHistory,
        registry: RunRegistry,
        lock: RunLock,
        cache: FileResponseCache,
        spend: Spend,
        control: RunControl,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = run_dir.run_id
        self.started_at = started_at
        self.history = history
        self.registry = registry
        self.lock = lock
        self.cache = cache
        self.spend = spend
        self.control = control

    def memo(self) -> dict[str, dict[str, MemoEntry]]:
        # the ledger was cut back to the checkpoint when it was opened
        return memo_from_rollouts(self.run_dir.rollouts)


def _final_state(stopped_by: str | None, error: GepaCliError | None) -> str:
    if isinstance(error, CancelledError):
        return "stopped"
    if error is not None:
        return "failed"
    if stopped_by in ("stop_file", "cancelled", "paused", *INTERRUPTS):
        return "stopped"
    return "finished"


def proposal_outcomes(run_dir: Path) -> dict[str, int]:
    """Proposer calls by what became of them (the kind before ':' of each ledger row's
    outcome: accepted, rejected, unusable, error, ...), with their total."""
    counts: dict[str, int] = {}
    path = run_dir / layout.PROPOSALS
    if path.exists():
        for _, row in read_rows(path, ProposalRow):
            kind = row.outcome.split(":", 1)[0].strip()
            counts[kind] = counts.get(kind, 0) + 1
    return {"total": sum(counts.values()), **dict(sorted(counts.items()))}


def summary(result: RunResult) -> Mapping[str, Any]:
    """The few fields a person wants after a run."""
    manifest = result.manifest
    best, seed = manifest.get("best_candidate") or {}, manifest.get("seed_candidate") or {}
    cost_known = bool(manifest.get("cost_known", True))
    spent_known = bool(manifest.get("spent_known", True))
    return {
        "run_id": manifest["run_id"],
        "run_dir": str(result.run_dir),
        "state": manifest["state"],
        "stopped_by": manifest["stopped_by"],
        "best_candidate_id": best.get("id"),
        "seed_val_mean": seed.get("val_mean"),
        "best_val_mean": best.get("val_mean"),
        "seed_heldout_mean": seed.get("heldout_mean"),
        "best_heldout_mean": best.get("heldout_mean"),
        "rollouts": (manifest.get("budget") or {}).get("rollouts"),
        "proposals": proposal_outcomes(result.run_dir),
        # null when some call had no price: unknown, never a made-up 0
        "cost_usd": manifest["cost_usd"] if cost_known else None,
        "spent_usd": manifest["spent_usd"] if spent_known else None,
        "cost_known": cost_known,
        "priced_cost_usd": manifest["cost_usd"],
        "cost_note": manifest.get("cost_note"),
        "error": manifest.get("error"),
    }


def _how_to_continue(run_dir: RunDirectory) -> str:
    """What to type once the fault is fixed: a run resumes from its last checkpoint, and
    one that failed before its first (during the seed validation) starts again."""
    if run_dir.checkpoint.exists():
        return f"then continue the run with `gepa-cli gepa resume {run_dir.root}`"
    return "then start the run again (it stopped before its first checkpoint: nothing to resume)"
