"""The invariants of a run directory, each with the rule it checks and a repair hint.

Rules (docs/querying.md repeats them for users):

- events.seq_contiguous: the seq values of events.jsonl are exactly 0..n-1, once each.
- frontier.members_registered: every candidate id in frontier.json's frontier is a
  row of candidates.jsonl.
- candidates.accepted_validated: every candidate_id of a candidate.accepted or
  merge.accepted event has a candidates.jsonl row whose val_count equals the number of
  run.started val_ids (for a run still writing: only events before its checkpoint).
- manifest.rollouts: budget.rollouts.total equals the rollouts.jsonl rows, and each of
  train/val/heldout equals the rows of that split.
- manifest.cost: budget.cost_usd (and cost_usd) equal the sum of rollout
  usage.cost_usd plus proposal cost_usd, within 1e-9.
- manifest.proposals: budget.proposals equals the proposals.jsonl rows.
- (a manifest with no budget, of a run that failed before its engine started: the
  rollouts and proposals ledgers have no rows, and cost_usd is their sum, 0.)
- manifest.artifacts: every file listed in manifest artifacts exists with its recorded
  size (bytes; the cheap check that names which file changed since the run ended).
- cache.profile_matches_ledgers: for container.rollout, with H/W/L the rollout rows
  whose cache_action is hit/write/live and T the live rows that failed with a
  ContainerError/ContainerContractError (the live call raised, so nothing was stored or
  counted as not_stored): hits = H, writes = W, not_stored = L - T, and (unless mode
  is off) misses = W + L; no row may lack a cache_action. For proposer.* (summed), with
  N proposal rows without cache_action (calls that raised): each of hits, writes and
  not_stored is at least the ledger's hit/write/live count, and the three together
  exceed the ledger's by at most N. A run with overlapping iterations (async_pipelined)
  counts each cache lookup when it happens, while its ledgers hold what committed: work
  dropped at a stop, or redone after a resume, was looked up more than once, so there
  every count is only required to be at least the ledger's.
- checkpoint.agrees_with_events: format is gepa_cli.run.checkpoint.v2 (or v1); each
  ledger offset is within its file (bytes <= size, at a line end, lines <= complete
  rows); next_seq <= events rows and equals the events.jsonl offset lines; the engine
  snapshot file it names exists with the recorded size (v1: the inline snapshot's
  next_event_index equals next_seq); and the event at seq next_seq-1 is a `checkpoint`.

Manifest and cache checks need the end-of-run files, so they are skipped for runs
that have no manifest or are running (a resumed run keeps its old manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gepa_cli.artifacts import layout
from gepa_cli.artifacts.schema import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMATS,
    CacheProfileDoc,
    Manifest,
)
from gepa_cli.workspace.discover import RunFiles
from gepa_cli.workspace.facts import RunFacts

Outcome = Literal["ok", "broken", "skipped"]
COST_TOLERANCE = 1e-9

HINTS = {
    "events.seq_contiguous": "events.jsonl was edited or written by two processes; restore it "
    "from a copy, or resume the run (`gepa-cli gepa resume`) which cuts the feed back to "
    "checkpoint.json",
    "frontier.members_registered": "candidates.jsonl lost rows that frontier.json names; "
    "restore candidates.jsonl from a copy (its rows are the candidate.validated events of "
    "events.jsonl) or rerun",
    "candidates.accepted_validated": "an accepted candidate lacks its full validation row; "
    "restore candidates.jsonl from a copy, or resume the run so validation completes",
    "manifest.rollouts": "manifest.json and rollouts.jsonl disagree: one was edited or "
    "truncated; the manifest's artifacts sizes name the changed file; restore it from a copy "
    "or rerun",
    "manifest.cost": "manifest.json cost and the ledgers' costs disagree: one was edited; "
    "restore the run directory from a copy or rerun",
    "manifest.proposals": "manifest.json and proposals.jsonl disagree: one was edited or "
    "truncated; restore it from a copy or rerun",
    "manifest.artifacts": "files changed after the run ended; restore them from a copy "
    "(manifest.json artifacts holds their sha256) or rerun",
    "cache.profile_matches_ledgers": "cache_profile.json and the ledgers' cache actions "
    "disagree: one was edited, or the profile was not carried across a resume; rerun with "
    "the cache in readwrite mode to rebuild both",
    "checkpoint.agrees_with_events": "checkpoint.json points past the ledgers: a ledger was "
    "truncated or edited after it; restore the ledger from a copy, or start a new run "
    "(resume would refuse this checkpoint)",
}


@dataclass
class Invariant:
    name: str
    outcome: Outcome
    detail: str = ""

    @property
    def hint(self) -> str:
        return HINTS[self.name]

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "outcome": self.outcome, "detail": self.detail}
        if self.outcome == "broken":
            out["hint"] = self.hint
        return out


def _verdict(name: str, problems: list[str], ok_detail: str = "") -> Invariant:
    if problems:
        return Invariant(
            name,
            "broken",
            "; ".join(problems[:5])
            + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""),
        )
    return Invariant(name, "ok", ok_detail)


def seq_contiguous(facts: RunFacts) -> Invariant:
    n = facts.events
    if n == 0:
        return Invariant("events.seq_contiguous", "ok", "no events yet")
    problems = []
    if facts.seq_min != 0:
        problems.append(f"first seq is {facts.seq_min}, not 0")
    if facts.seq_distinct != n:
        problems.append(f"{n - facts.seq_distinct} duplicate seq values")
    if facts.seq_max != n - 1:
        problems.append(f"{n} events but the highest seq is {facts.seq_max} (a gap)")
    return _verdict("events.seq_contiguous", problems, f"0..{n - 1}")


def frontier_registered(run: RunFiles, facts: RunFacts) -> Invariant:
    name = "frontier.members_registered"
    if run.frontier is None:
        return Invariant(name, "skipped", "no frontier.json yet")
    members = {c for ids in run.frontier.frontier.values() for c in ids}
    missing = sorted(members - set(facts.candidates))
    return _verdict(
        name,
        [f"{c} is on the frontier but not in candidates.jsonl" for c in missing],
        f"{len(members)} members",
    )


def accepted_validated(run: RunFiles, facts: RunFacts, running: bool) -> Invariant:
    name = "candidates.accepted_validated"
    if facts.val_ids is None:
        return Invariant(name, "skipped", "no run.started event yet")
    accepted = facts.accepted
    if running:
        # a live run validates after accepting; only work before its checkpoint is done
        if run.checkpoint is None:
            return Invariant(name, "skipped", "running without a checkpoint yet")
        cut = run.checkpoint.next_seq
        accepted = [(seq, cid) for seq, cid in accepted if seq < cut]
    problems = []
    for _, cid in accepted:
        if cid not in facts.candidates:
            problems.append(f"{cid} was accepted but has no candidates.jsonl row")
        elif facts.candidates[cid] != facts.val_ids:
            problems.append(
                f"{cid} has val_count {facts.candidates[cid]}, expected {facts.val_ids}"
            )
    return _verdict(name, problems, f"{len(accepted)} accepted")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= COST_TOLERANCE


def manifest_checks(run: RunFiles, facts: RunFacts) -> list[Invariant]:
    manifest = run.manifest
    assert manifest is not None
    budget = manifest.budget
    if budget is None:
        # the run ended before its engine started (a container that never came up):
        # honest only if no work was recorded either
        return [
            _nothing_recorded("manifest.rollouts", facts.rollouts, layout.ROLLOUTS),
            _cost(manifest, facts),
            _nothing_recorded("manifest.proposals", facts.proposals, layout.PROPOSALS),
            _artifacts(run, manifest),
        ]
    problems = []
    if budget.rollouts.get("total") != facts.rollouts:
        problems.append(
            f"budget.rollouts.total is {budget.rollouts.get('total')}, rollouts.jsonl has "
            f"{facts.rollouts} rows"
        )
    for split in ("train", "val", "heldout"):
        recorded = budget.rollouts.get(split)
        if recorded is not None and recorded != facts.rollouts_by_split.get(split, 0):
            problems.append(
                f"budget.rollouts.{split} is {recorded}, rollouts.jsonl has "
                f"{facts.rollouts_by_split.get(split, 0)} {split} rows"
            )
    out = [_verdict("manifest.rollouts", problems, f"{facts.rollouts} rollouts")]

    out.append(_cost(manifest, facts))

    out.append(
        _verdict(
            "manifest.proposals",
            []
            if budget.proposals == facts.proposals
            else [
                f"budget.proposals is {budget.proposals}, proposals.jsonl has "
                f"{facts.proposals} rows"
            ],
            f"{facts.proposals} proposals",
        )
    )
    out.append(_artifacts(run, manifest))
    return out


def _cost(manifest: Manifest, facts: RunFacts) -> Invariant:
    recorded = [("cost_usd", manifest.cost_usd)]
    if manifest.budget is not None:
        recorded.insert(0, ("budget.cost_usd", manifest.budget.cost_usd))
    problems = [
        f"{key} is {value}, the ledgers sum to {facts.cost_usd:.12g}"
        for key, value in recorded
        if not _close(value, facts.cost_usd)
    ]
    return _verdict("manifest.cost", problems, f"{facts.cost_usd:.6f} USD")


def _nothing_recorded(name: str, rows: int, ledger: str) -> Invariant:
    if rows:
        return Invariant(
            name, "broken", f"the manifest records no budget but {ledger} has {rows} rows"
        )
    return Invariant(name, "ok", "no budget and no rows: the run ended before its engine started")


def _artifacts(run: RunFiles, manifest: Manifest) -> Invariant:
    problems = []
    for rel, digest in sorted(manifest.artifacts.items()):
        path = run.path / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{rel} is missing")
            continue
        if size != digest.bytes:
            problems.append(f"{rel} has {size} bytes, the manifest recorded {digest.bytes}")
    return _verdict("manifest.artifacts", problems, f"{len(manifest.artifacts)} files")


def _profile_counts(profile: CacheProfileDoc, prefix: str) -> dict[str, int]:
    totals = {"hits": 0, "misses": 0, "writes": 0, "not_stored": 0}
    for boundary, counts in profile.boundaries.items():
        if boundary == prefix or (prefix.endswith(".") and boundary.startswith(prefix)):
            for key in totals:
                totals[key] += getattr(counts, key)
    return totals


def cache_check(run: RunFiles, facts: RunFacts) -> Invariant:
    name = "cache.profile_matches_ledgers"
    profile = run.cache_profile
    if profile is None:
        return Invariant(name, "skipped", "no cache_profile.json")
    problems = []
    at_least = _pipelined(run)
    r = _profile_counts(profile, "container.rollout")
    hit, write, live = (facts.rollout_actions.get(k, 0) for k in ("hit", "write", "live"))
    unrecorded = facts.rollouts - hit - write - live
    if unrecorded:
        problems.append(f"{unrecorded} rollouts have no cache_action")
    expected = {"hits": hit, "writes": write, "not_stored": live - facts.transport_failures}
    if profile.mode != "off":
        expected["misses"] = write + live
    for key, value in expected.items():
        if r[key] < value if at_least else r[key] != value:
            bound = "at least " if at_least else ""
            problems.append(
                f"container.rollout {key} is {r[key]}, the rollouts ledger gives {bound}{value}"
            )

    p = _profile_counts(profile, "proposer.")
    ledger = {
        "hits": facts.proposal_actions.get("hit", 0),
        "writes": facts.proposal_actions.get("write", 0),
        "not_stored": facts.proposal_actions.get("live", 0),
    }
    raised = facts.proposal_actions.get("none", 0)
    for key, value in ledger.items():
        if p[key] < value:
            problems.append(f"proposer {key} is {p[key]}, the proposals ledger has {value}")
    extra = sum(p[k] for k in ledger) - sum(ledger.values())
    if extra > raised and not at_least:
        problems.append(
            f"proposer profile counts {extra} calls more than the proposals ledger "
            f"(at most {raised} calls raised)"
        )
    return _verdict(name, problems, f"{hit} hits, {write} writes, {live} live rollouts")


def _pipelined(run: RunFiles) -> bool:
    pipeline = (run.config.section("gepa") if run.config is not None else {}).get("pipeline")
    return isinstance(pipeline, dict) and pipeline.get("mode") == "async_pipelined"


def checkpoint_check(run: RunFiles, facts: RunFacts, finished: bool) -> Invariant:
    name = "checkpoint.agrees_with_events"
    cp = run.checkpoint
    if cp is None:
        if layout.CHECKPOINT in run.unreadable:
            return Invariant(
                name, "broken", f"{layout.CHECKPOINT}: {run.unreadable[layout.CHECKPOINT]}"
            )
        if finished and facts.events_by_type.get("checkpoint"):
            return Invariant(
                name, "broken", "the feed has checkpoints but checkpoint.json is missing"
            )
        return Invariant(name, "skipped", "no checkpoint.json yet")
    problems = []
    if cp.format not in CHECKPOINT_FORMATS:
        problems.append(f"format is {cp.format!r}, expected {CHECKPOINT_FORMAT}")
    rows = {
        layout.EVENTS: facts.events,
        layout.ROLLOUTS: facts.rollouts,
        layout.PROPOSALS: facts.proposals,
        layout.CANDIDATES: facts.candidate_rows,
    }
    for ledger, offset in sorted(cp.ledgers.items()):
        size = run.ledger_bytes.get(ledger, 0)
        if offset.bytes > size:
            problems.append(f"{ledger} offset {offset.bytes} bytes is past its size {size}")
        elif offset.bytes and not _at_line_end(run, ledger, offset.bytes):
            problems.append(f"{ledger} offset {offset.bytes} is not at a line end")
        if ledger in rows and offset.lines > rows[ledger]:
            problems.append(
                f"{ledger} offset {offset.lines} lines, the file has {rows[ledger]} rows"
            )
    next_seq = cp.next_seq
    if next_seq > facts.events:
        problems.append(f"next_seq {next_seq} is past the {facts.events} events")
    events_offset = cp.ledgers.get(layout.EVENTS)
    if events_offset is not None and events_offset.lines != next_seq:
        problems.append(f"events.jsonl offset {events_offset.lines} lines != next_seq {next_seq}")
    if cp.snapshot is not None:
        # the size only: cheap, and enough to name a snapshot that was swapped or cut
        snapshot_size = _size(run.path / cp.snapshot.file)
        if snapshot_size != cp.snapshot.bytes:
            found = "is missing" if snapshot_size is None else f"has {snapshot_size} bytes"
            problems.append(
                f"{cp.snapshot.file} {found}, the checkpoint recorded {cp.snapshot.bytes}"
            )
    elif cp.engine is not None:  # a v1 checkpoint: the snapshot inline
        engine_next = cp.engine.get("next_event_index")
        if engine_next is not None and engine_next != next_seq:
            problems.append(f"engine.next_event_index {engine_next} != next_seq {next_seq}")
    else:
        problems.append("names no engine snapshot")
    if next_seq > 0 and (next_seq - 1) not in facts.type_at:
        problems.append(f"the event at seq {next_seq - 1} is not a checkpoint event")
    return _verdict(name, problems, f"next_seq {next_seq}")


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _at_line_end(run: RunFiles, ledger: str, nbytes: int) -> bool:
    try:
        with open(run.path / ledger, "rb") as handle:
            handle.seek(nbytes - 1)
            return handle.read(1) == b"\n"
    except OSError:
        return False


def check_run(run: RunFiles, facts: RunFacts, state: str) -> list[Invariant]:
    """Every invariant of one run; end-of-run checks are skipped unless it has ended."""
    ended = state in ("finished", "stopped", "failed") and run.manifest is not None
    out = [
        seq_contiguous(facts),
        frontier_registered(run, facts),
        accepted_validated(run, facts, running=not ended),
        checkpoint_check(run, facts, finished=ended),
    ]
    if ended:
        out.extend(manifest_checks(run, facts))
        out.append(cache_check(run, facts))
    else:
        reason = f"the run is {state}: no final manifest"
        out.extend(
            Invariant(name, "skipped", reason)
            for name in (
                "manifest.rollouts",
                "manifest.cost",
                "manifest.proposals",
                "manifest.artifacts",
                "cache.profile_matches_ledgers",
            )
        )
    return out
