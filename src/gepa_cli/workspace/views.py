"""DuckDB views over run directories: the lens over the files, which stay the truth.

One in-memory connection reads the files in place (``read_json`` on the ledgers), so
nothing is ever locked or written in a run directory. Ledgers are read with
``ignore_errors``: the half-written last line of a running run (and any unparsable
line) comes back as an all-NULL row, which the views drop by their key column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson

from gepa_cli.artifacts import layout
from gepa_cli.workspace import schemas
from gepa_cli.workspace.discover import RunFiles, read_runs
from gepa_cli.workspace.errors import QueryError

# The run id is the name of the directory holding the file.
RUN_ID_SQL = r"regexp_extract(filename, '([^/\\]+)[/\\][^/\\]+$', 1)"


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def columns_literal(columns: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in columns.items()) + "}"


def empty_select(columns: Mapping[str, str]) -> str:
    """A typed, empty relation: the view of a file no run has yet."""
    casts = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items())
    return f"SELECT CAST(NULL AS VARCHAR) AS run_id, {casts} WHERE false"


def read_files(files: Sequence[Path], columns: Mapping[str, str], *, lines: bool) -> str:
    """``SELECT run_id, <columns>`` over ``files`` with pinned types."""
    if not files:
        return empty_select(columns)
    listing = "[" + ", ".join(sql_string(f.as_posix()) for f in files) + "]"
    fmt = "newline_delimited" if lines else "unstructured"
    names = ", ".join(columns)
    return (
        f"SELECT {RUN_ID_SQL} AS run_id, {names} FROM read_json({listing}, "
        f"columns={columns_literal(columns)}, format='{fmt}', ignore_errors=true, "
        "filename=true)"
    )


def existing(runs: Sequence[RunFiles], name: str) -> list[Path]:
    return [run.path / name for run in runs if (run.path / name).is_file()]


def _usage_columns() -> str:
    return (
        "usage.prompt_tokens AS prompt_tokens, usage.completion_tokens AS completion_tokens, "
        "usage.cost_usd AS cost_usd, usage.cost_known AS cost_known"
    )


def run_state(run: RunFiles) -> str:
    """running | finished | stopped | failed | crashed | unknown | incomplete.

    The lock decides first: a live pid on this host is running even when an older
    manifest exists (a resumed run); a dead pid is a crash whatever the registry says.
    """
    if run.lock == "alive":
        return "running"
    if run.lock == "unknown":
        return "unknown"  # held by a process on another host: cannot tell from here
    if run.lock == "stale":
        return "crashed"
    state = run.manifest.state if run.manifest else None
    if state in ("finished", "stopped", "failed"):
        return str(state)
    return "incomplete"  # no lock and no manifest: it died before either was written


def runs_row(run: RunFiles) -> tuple[Any, ...]:
    manifest, frontier, registry = run.manifest, run.frontier, run.registry
    best = manifest.best_candidate if manifest else None
    seed = manifest.seed_candidate if manifest else None
    budget = manifest.budget if manifest else None
    cache = manifest.cache if manifest else None
    profile = run.cache_profile
    return (
        run.run_id,
        str(run.path),
        run_state(run),
        run.lock,
        registry.state if registry else None,
        manifest.state if manifest else None,
        (manifest.config_path if manifest else None) or (registry.config if registry else None),
        manifest.started_at if manifest else registry.started_at if registry else None,
        manifest.finished_at if manifest else None,
        manifest.stopped_by if manifest else None,
        run.best_candidate_id,
        best.val_mean if best else frontier.best_val_mean if frontier else None,
        best.val_count if best else None,
        best.heldout_mean if best else None,
        seed.val_mean if seed else None,
        seed.heldout_mean if seed else None,
        budget.rollouts.get("total") if budget else None,
        budget.proposals if budget else None,
        budget.tokens if budget else None,
        manifest.cost_usd if manifest else None,
        manifest.cost_known if manifest else None,
        manifest.spent_usd if manifest else None,
        manifest.num_candidates if manifest else None,
        manifest.iterations if manifest else None,
        cache.mode if cache else profile.mode if profile else None,
        cache.namespace if cache else profile.namespace if profile else None,
        run.config.proposer_backend if run.config else None,
        orjson.dumps(manifest.dump()).decode() if manifest is not None else None,
    )


def register_views(con: duckdb.DuckDBPyConnection, runs: Sequence[RunFiles]) -> None:
    columns = ", ".join(f"{c} {t}" for c, t in schemas.RUNS.items())
    con.execute(f"CREATE TABLE runs ({columns})")
    if runs:
        marks = ", ".join("?" for _ in schemas.RUNS)
        con.executemany(f"INSERT INTO runs VALUES ({marks})", [runs_row(r) for r in runs])

    events = read_files(existing(runs, layout.EVENTS), schemas.EVENTS, lines=True)
    con.execute(f"CREATE VIEW events AS SELECT * FROM ({events}) WHERE seq IS NOT NULL")

    rollouts = read_files(existing(runs, layout.ROLLOUTS), schemas.ROLLOUTS, lines=True)
    con.execute(
        f"CREATE VIEW rollouts AS SELECT *, {_usage_columns()} FROM ({rollouts}) "
        "WHERE candidate_id IS NOT NULL"
    )

    # an online session's rewards, one row per rewarded rollout (join rollouts on
    # rollouts.example_id = rewards.rollout_id)
    rewards = read_files(existing(runs, layout.REWARDS), schemas.REWARDS, lines=True)
    con.execute(f"CREATE VIEW rewards AS SELECT * FROM ({rewards}) WHERE rollout_id IS NOT NULL")

    proposals = read_files(existing(runs, layout.PROPOSALS), schemas.PROPOSALS, lines=True)
    con.execute(
        "CREATE VIEW proposals AS SELECT *, "
        "trim(split_part(outcome, ':', 1)) AS outcome_kind, "
        "usage.prompt_tokens AS prompt_tokens, usage.completion_tokens AS completion_tokens, "
        "usage.cost_known AS cost_known "
        f"FROM ({proposals}) WHERE proposal_id IS NOT NULL"
    )

    candidates = read_files(existing(runs, layout.CANDIDATES), schemas.CANDIDATES, lines=True)
    con.execute(
        f"CREATE VIEW candidates AS SELECT * FROM ({candidates}) WHERE candidate_id IS NOT NULL"
    )

    frontier = read_files(existing(runs, layout.FRONTIER), schemas.FRONTIER_FILE, lines=False)
    con.execute(
        "CREATE VIEW frontier AS SELECT run_id, frontier_type, entry.key AS key, "
        "unnest(entry.value) AS candidate_id, best_scores[entry.key] AS best_score, "
        "best_candidate_id, best_val_mean FROM (SELECT *, unnest(map_entries(frontier)) "
        f"AS entry FROM ({frontier}) WHERE frontier IS NOT NULL)"
    )

    profile = read_files(
        existing(runs, layout.CACHE_PROFILE), schemas.CACHE_PROFILE_FILE, lines=False
    )
    # One row per (run, source, boundary): what the cache counted (source 'profile')
    # next to what the ledgers recorded per call (source 'ledger'); `unrecorded` counts
    # ledger rows without a cache action (calls that raised before the cache answered).
    con.execute(
        "CREATE VIEW cache AS "
        "SELECT run_id, 'profile' AS source, entry.key AS boundary, namespace, mode, "
        "entry.value.hits AS hits, entry.value.misses AS misses, entry.value.writes AS writes, "
        "entry.value.not_stored AS not_stored, CAST(NULL AS BIGINT) AS live, "
        "CAST(NULL AS BIGINT) AS unrecorded "
        "FROM (SELECT *, unnest(map_entries(boundaries)) AS entry "
        f"FROM ({profile}) WHERE boundaries IS NOT NULL) "
        "UNION ALL "
        "SELECT run_id, 'ledger', 'container.rollout', NULL, NULL, "
        "count(*) FILTER (cache_action = 'hit'), NULL, count(*) FILTER (cache_action = 'write'), "
        "NULL, count(*) FILTER (cache_action = 'live'), "
        "count(*) FILTER (cache_action IS NULL OR cache_action NOT IN ('hit', 'write', 'live')) "
        "FROM rollouts GROUP BY run_id "
        "UNION ALL "
        "SELECT p.run_id, 'ledger', 'proposer.' || coalesce(any_value(r.proposer_backend), "
        "'unknown'), NULL, NULL, "
        "count(*) FILTER (cache_action = 'hit'), NULL, count(*) FILTER (cache_action = 'write'), "
        "NULL, count(*) FILTER (cache_action = 'live'), "
        "count(*) FILTER (cache_action IS NULL OR cache_action NOT IN ('hit', 'write', 'live')) "
        "FROM proposals p LEFT JOIN runs r USING (run_id) GROUP BY p.run_id"
    )


class Workspace:
    """Run directories with the views registered on a fresh in-memory connection."""

    def __init__(self, runs: Sequence[RunFiles]) -> None:
        self.runs = list(runs)
        self.con = duckdb.connect(":memory:")
        register_views(self.con, self.runs)

    @classmethod
    def open(cls, target: str | Path) -> Workspace:
        return cls(read_runs(target))

    def query(
        self, sql: str, params: Sequence[Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql``; return (column names, rows). DuckDB errors become `QueryError`."""
        try:
            cursor = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
            rows = cursor.fetchall()
            names = [d[0] for d in cursor.description] if cursor.description else []
        except duckdb.Error as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise QueryError(
                f"query failed: {first}",
                hint="the views are " + ", ".join(schemas.VIEW_NAMES) + " (see docs/querying.md)",
            ) from None
        return names, rows

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
