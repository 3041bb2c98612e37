"""The run registry ``runs/index.jsonl``: one line per run start or state change.

Several runs may share an output directory, so each line goes out as a single
``write`` on an ``O_APPEND`` descriptor: POSIX appends never interleave within one write
on a local filesystem. Readers fold the lines by run id (last line wins).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.events import utc_now
from gepa_cli.artifacts.ledger import dumps_line, iter_jsonl


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    run_dir: str
    config: str | None = None
    started_at: str
    state: str
    at: str | None = None


class RunRegistry:
    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = Path(runs_dir)
        self.path = self.runs_dir / layout.INDEX

    def append(self, record: RunRecord) -> None:
        if record.at is None:
            record = record.model_copy(update={"at": utc_now()})
        line = dumps_line(record.model_dump(mode="json"))
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # pragma: no cover - only on a full disk
                raise OSError(f"short write to {self.path}")
        finally:
            os.close(fd)

    def record(
        self,
        run_id: str,
        run_dir: Path,
        *,
        state: str,
        started_at: str,
        config: Path | None = None,
    ) -> RunRecord:
        entry = RunRecord(
            run_id=run_id,
            run_dir=str(run_dir),
            config=str(config) if config is not None else None,
            started_at=started_at,
            state=state,
        )
        self.append(entry)
        return entry

    def history(self) -> list[RunRecord]:
        """Every line, in order; unreadable lines (another writer's version) are skipped."""
        if not self.path.exists():
            return []
        records = []
        for _, obj in iter_jsonl(self.path):
            try:
                records.append(RunRecord.model_validate(obj))
            except ValidationError:
                continue
        return records

    def runs(self) -> dict[str, RunRecord]:
        """The latest line per run id, in order of first appearance."""
        latest: dict[str, RunRecord] = {}
        for record in self.history():
            latest[record.run_id] = record
        return latest
