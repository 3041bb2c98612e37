"""One typed schema for the run directory: what the runner writes is exactly what the
models define, file names are spelled once, and the DuckDB views follow the models."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

import gepa_cli
from gepa_cli.artifacts import layout, read_jsonl, write_json_atomic
from gepa_cli.artifacts.manifest import file_digest
from gepa_cli.artifacts.schema import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_V1,
    CacheProfileDoc,
    CandidateRow,
    CheckpointDoc,
    EventLine,
    FrontierDoc,
    Manifest,
    ProposalRow,
    Record,
    ResolvedConfigDoc,
    RolloutRow,
    read_snapshot,
)
from gepa_cli.errors import ResumeError
from gepa_cli.runner.feed import FeedIndex
from gepa_cli.workspace.schemas import columns, duckdb_type
from support.cli import run_cli
from support.task_dir import make_task_dir

LEDGER_MODELS = {
    layout.EVENTS: EventLine,
    layout.ROLLOUTS: RolloutRow,
    layout.PROPOSALS: ProposalRow,
    layout.CANDIDATES: CandidateRow,
}
DOCUMENT_MODELS = {
    layout.CONFIG_RESOLVED: ResolvedConfigDoc,
    layout.FRONTIER: FrontierDoc,
    layout.CHECKPOINT: CheckpointDoc,
    layout.CACHE_PROFILE: CacheProfileDoc,
    layout.MANIFEST: Manifest,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("task")
    config = make_task_dir(
        root,
        run={"run_id": "schema", "output_dir": str(root / "runs")},
        dataset={"train_seeds": "0:12", "val_seeds": "0:4", "heldout_seeds": "0:3"},
        gepa={"max_total_rollouts": 70, "minibatch_size": 3},
    )
    result = run_cli("gepa", "run", "--config", str(config))
    assert result.exit_code == 0, result.output
    return root / "runs" / "schema"


def _same(model: type[Record], raw: dict[str, object]) -> None:
    """The raw JSON, read into the model and dumped again, is unchanged: the writer
    wrote every field the model defines, with its type, and nothing else."""
    dumped = model.model_validate(raw).dump()
    assert orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        raw, option=orjson.OPT_SORT_KEYS
    ), model.__name__


def test_every_file_of_a_real_run_is_exactly_its_model(run_dir: Path) -> None:
    for name, model in LEDGER_MODELS.items():
        rows = read_jsonl(run_dir / name)
        assert rows, name
        for row in rows:
            _same(model, row)
    for name, model in DOCUMENT_MODELS.items():
        _same(model, orjson.loads((run_dir / name).read_bytes()))
    # the checkpoint names its engine snapshot, the only one left in the directory
    checkpoint = CheckpointDoc.model_validate_json((run_dir / layout.CHECKPOINT).read_bytes())
    assert checkpoint.format == CHECKPOINT_FORMAT and checkpoint.snapshot is not None
    assert [p.name for p in run_dir.glob(layout.SNAPSHOT_GLOB)] == [checkpoint.snapshot.file]
    snapshot = read_snapshot(run_dir, checkpoint)
    assert snapshot["next_event_index"] == checkpoint.next_seq
    # the proposer is found where the runner writes it (defect: readers looked flat)
    resolved = ResolvedConfigDoc.model_validate_json(
        (run_dir / layout.CONFIG_RESOLVED).read_bytes()
    )
    assert resolved.proposer_backend == "command"


def test_the_manifest_is_the_outcome_the_feed_tells(run_dir: Path) -> None:
    manifest = Manifest.model_validate_json((run_dir / layout.MANIFEST).read_bytes())
    feed = FeedIndex()
    feed.fold_file(run_dir / layout.EVENTS)
    outcome = feed.outcome("unused: the run finished")
    assert outcome is not None and manifest.best_candidate and manifest.seed_candidate
    assert manifest.stopped_by == outcome.stopped_by
    assert manifest.best_candidate.id == outcome.best_candidate_id
    assert manifest.best_candidate.texts == outcome.best_texts
    assert manifest.best_candidate.val_mean == outcome.best_val_mean
    assert manifest.best_candidate.heldout_mean == outcome.best_heldout_mean
    assert manifest.seed_candidate.val_count == outcome.seed_val_count
    assert manifest.heldout_count == outcome.heldout_count == 3
    assert manifest.num_candidates == outcome.num_candidates
    assert manifest.iterations == outcome.iterations
    assert manifest.budget is not None and manifest.budget.dump() == outcome.budget
    # run.finished is the record's own event data, key for key
    [finished] = [e for e in read_jsonl(run_dir / layout.EVENTS) if e["type"] == "run.finished"]
    assert finished["data"] == outcome.finished_event()


def test_run_directory_file_names_are_spelled_only_in_the_layout() -> None:
    names = {
        value for key, value in vars(layout).items() if key.isupper() and isinstance(value, str)
    }
    src = Path(gepa_cli.__file__).parent
    found = []
    for path in sorted(src.rglob("*.py")):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(src)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_view_columns_follow_the_models() -> None:
    class Sample(BaseModel):
        name: str
        count: int | None = None
        tags: list[str]
        by_key: dict[str, list[str]]
        usage: dict[str, float]
        payload: object = None

    assert columns(Sample) == {
        "name": "VARCHAR",
        "count": "BIGINT",
        "tags": "VARCHAR[]",
        "by_key": "JSON",
        "usage": "JSON",
        "payload": "JSON",
    }
    assert columns(Sample, maps=True)["by_key"] == "MAP(VARCHAR, VARCHAR[])"
    assert duckdb_type(CacheProfileDoc.model_fields["totals"].annotation, maps=True) == (
        "STRUCT(hits BIGINT, misses BIGINT, writes BIGINT, not_stored BIGINT)"
    )
    assert list(columns(ProposalRow)) == list(ProposalRow.model_fields)
    assert "run_id" in EventLine.model_fields and "run_id" not in columns(
        EventLine, exclude=("run_id",)
    )


def test_a_checkpoint_keeps_its_snapshot_honest_and_v1_stays_readable(
    run_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "runs" / "schema"
    shutil.copytree(run_dir, copy)
    checkpoint = CheckpointDoc.model_validate_json((copy / layout.CHECKPOINT).read_bytes())
    assert checkpoint.snapshot is not None
    snapshot_path = copy / checkpoint.snapshot.file
    snapshot = read_snapshot(copy, checkpoint)
    # a snapshot that is not the one the checkpoint recorded is refused by name
    snapshot_path.write_bytes(snapshot_path.read_bytes().replace(b'"rng_seed":', b'"rng_Seed":'))
    with pytest.raises(ResumeError, match="is not the snapshot its checkpoint recorded"):
        read_snapshot(copy, checkpoint, error=ResumeError)
    status = run_cli("workspace", "status", str(copy), "--json")
    assert status.exit_code == 0  # same size: the cheap check cannot tell; resume can
    snapshot_path.unlink()
    status = run_cli("workspace", "status", str(copy), "--json")
    assert status.exit_code == 1
    broken = {b["name"]: b["detail"] for b in orjson.loads(status.stdout)["broken"]}
    assert set(broken) == {"checkpoint.agrees_with_events", "manifest.artifacts"}
    assert f"{checkpoint.snapshot.file} is missing" in broken["checkpoint.agrees_with_events"]
    # a checkpoint of the first format, the snapshot inline, is still a healthy run
    legacy = {**checkpoint.dump(), "format": CHECKPOINT_V1, "engine": snapshot}
    del legacy["snapshot"]
    write_json_atomic(copy / layout.CHECKPOINT, legacy)
    manifest = Manifest.model_validate_json((copy / layout.MANIFEST).read_bytes())
    digests = {
        **manifest.artifacts,
        layout.CHECKPOINT: file_digest(copy / layout.CHECKPOINT),
    }
    digests.pop(checkpoint.snapshot.file)
    write_json_atomic(
        copy / layout.MANIFEST, manifest.model_copy(update={"artifacts": digests}).dump()
    )
    status = run_cli("workspace", "status", str(copy), "--json")
    assert status.exit_code == 0, status.stdout
    legacy_doc = CheckpointDoc.model_validate(legacy)
    assert read_snapshot(copy, legacy_doc) == snapshot
