"""The names of the files of a run directory: spelled here, and nowhere else.

docs/run-directory.md describes each file; `gepa_cli.artifacts.schema` defines the
shape of each one.
"""

from __future__ import annotations

CONFIG_RESOLVED = "config.resolved.json"
EVENTS = "events.jsonl"
EVENTS_NORMALIZED = "events.normalized.jsonl"
ROLLOUTS = "rollouts.jsonl"
PROPOSALS = "proposals.jsonl"
CANDIDATES = "candidates.jsonl"
# online sessions only: one row per reward (its rollout is a row of rollouts.jsonl)
REWARDS = "rewards.jsonl"
FRONTIER = "frontier.json"
CHECKPOINT = "checkpoint.json"
# the engine snapshot of checkpoint number N, in its own file so that readers of the
# checkpoint's offsets (workspace status) never parse the engine's state
SNAPSHOT = "snapshot-{index:06d}.json"
SNAPSHOT_GLOB = "snapshot-*.json"
CACHE_PROFILE = "cache_profile.json"
MANIFEST = "manifest.json"
LOCK = "run.lock"
STOP = "STOP"
CONTAINER_LOG = "container.log"

# in the runs directory, next to the run directories: the run registry
INDEX = "index.jsonl"

# the append-only JSONL files a run flushes together at each checkpoint
LEDGERS = (EVENTS, ROLLOUTS, PROPOSALS, CANDIDATES)
# the append-only files of an online session, each line written through to the OS
SESSION_LEDGERS = (ROLLOUTS, REWARDS, PROPOSALS, CANDIDATES, EVENTS)

# Any of these marks a directory as a run directory (a run that just started may have
# only its lock or its resolved config).
RUN_MARKERS = (EVENTS, MANIFEST, CHECKPOINT, CONFIG_RESOLVED, LOCK)

# Not digested into the manifest: it cannot hold its own hash, and the lock and STOP
# file are control files whose presence depends on when the manifest is written.
NOT_DIGESTED = frozenset({MANIFEST, LOCK, STOP})
