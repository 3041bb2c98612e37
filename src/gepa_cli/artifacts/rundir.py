"""`RunDirectory`: every path of ``runs/<run_id>/`` and the ledgers a run writes.

Resume protocol (the runner's side):

1. at each checkpoint: ``offsets = ledgers.flush()`` (fsync every ledger), then write
   checkpoint.json atomically (`CheckpointDoc` with ``ledgers=offsets``);
2. on resume: ``rd.open_ledgers(resume_from=checkpoint.ledgers)`` truncates each
   ledger to its recorded offset, and ``EventWriter(ledgers.events, run_id)`` continues
   ``seq`` from the committed event count.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.atomic import write_json_atomic
from gepa_cli.artifacts.events import normalize_file
from gepa_cli.artifacts.ledger import JsonlLedger, LedgerOffset, check_offset
from gepa_cli.artifacts.liveness import RunLock, lock_status
from gepa_cli.artifacts.schema import Record
from gepa_cli.errors import ResumeError


class Ledgers:
    """The four ledgers of a run, flushed together at each checkpoint."""

    def __init__(self, ledgers: Mapping[str, JsonlLedger]) -> None:
        self.by_name = dict(ledgers)

    @property
    def events(self) -> JsonlLedger:
        return self.by_name[layout.EVENTS]

    @property
    def rollouts(self) -> JsonlLedger:
        return self.by_name[layout.ROLLOUTS]

    @property
    def proposals(self) -> JsonlLedger:
        return self.by_name[layout.PROPOSALS]

    @property
    def candidates(self) -> JsonlLedger:
        return self.by_name[layout.CANDIDATES]

    def flush(self) -> dict[str, LedgerOffset]:
        """Make every ledger durable; the result goes into checkpoint.json as ``ledgers``."""
        return {name: ledger.flush() for name, ledger in self.by_name.items()}

    def close(self) -> dict[str, LedgerOffset]:
        return {name: ledger.close() for name, ledger in self.by_name.items()}


class RunDirectory:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_run(cls, output_dir: Path, run_id: str) -> RunDirectory:
        return cls(Path(output_dir) / run_id)

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def runs_dir(self) -> Path:
        return self.root.parent

    @property
    def config_resolved(self) -> Path:
        return self.root / layout.CONFIG_RESOLVED

    @property
    def events(self) -> Path:
        return self.root / layout.EVENTS

    @property
    def events_normalized(self) -> Path:
        return self.root / layout.EVENTS_NORMALIZED

    @property
    def rollouts(self) -> Path:
        return self.root / layout.ROLLOUTS

    @property
    def proposals(self) -> Path:
        return self.root / layout.PROPOSALS

    @property
    def candidates(self) -> Path:
        return self.root / layout.CANDIDATES

    @property
    def frontier(self) -> Path:
        return self.root / layout.FRONTIER

    @property
    def checkpoint(self) -> Path:
        return self.root / layout.CHECKPOINT

    def snapshot(self, index: int) -> Path:
        """The engine snapshot file of checkpoint number ``index``."""
        return self.root / layout.SNAPSHOT.format(index=index)

    def snapshots(self) -> list[Path]:
        return sorted(self.root.glob(layout.SNAPSHOT_GLOB))

    @property
    def cache_profile(self) -> Path:
        return self.root / layout.CACHE_PROFILE

    @property
    def manifest(self) -> Path:
        return self.root / layout.MANIFEST

    @property
    def lock(self) -> Path:
        return self.root / layout.LOCK

    @property
    def stop_file(self) -> Path:
        return self.root / layout.STOP

    def create(self) -> None:
        """Make the directory for a new run; an existing run is never overwritten."""
        if self.root.exists() and any(self.root.iterdir()):
            raise ResumeError(
                f"run directory {self.root} already exists and is not empty",
                hint="resume it with `gepa-cli gepa resume`, or pick a new run id",
            )
        self.root.mkdir(parents=True, exist_ok=True)

    def open_ledgers(self, resume_from: Mapping[str, LedgerOffset] | None = None) -> Ledgers:
        """Open the four ledgers, fresh or truncated back to checkpointed offsets."""
        offsets: dict[str, LedgerOffset | None] = dict.fromkeys(layout.LEDGERS)
        if resume_from is not None:
            # every offset is checked before any ledger is truncated
            for name in layout.LEDGERS:
                offset = resume_from.get(name)
                if offset is None:
                    raise ResumeError(
                        f"checkpoint of {self.root} records no offset for {name}",
                        hint="the checkpoint is from another version; start a new run",
                    )
                check_offset(self.root / name, offset)
                offsets[name] = offset
        ledgers = {
            name: JsonlLedger(self.root / name, resume_from=offset)
            for name, offset in offsets.items()
        }
        return Ledgers(ledgers)

    def write_document(self, path: Path, document: Record) -> Path:
        """Atomically write one of the JSON documents (frontier.json, checkpoint.json, ...)."""
        write_json_atomic(path, document.dump())
        return path

    def write_normalized_events(self) -> Path:
        normalize_file(self.events, self.events_normalized)
        return self.events_normalized

    def run_lock(self) -> RunLock:
        return RunLock(self.root, self.run_id)

    def liveness(self) -> str:
        return lock_status(self.root)

    def stop_requested(self) -> bool:
        return self.stop_file.exists()
