"""API keys by client (file, env var, single key) and the upgrade of an old SQLite queue."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from gepa_cli.errors import ConfigError
from gepa_cli.service.keys import load_keys
from gepa_cli.service.migrations import MIGRATIONS
from gepa_cli.service.queue import RunQueue


def test_keys_from_a_file_an_env_var_and_a_single_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    digest = hashlib.sha256(b"ci-key-0123").hexdigest()
    keys.write_text(
        f'[clients.alice]\nkey_env = "ALICE_KEY"\n\n[clients.ci]\nkey_sha256 = "{digest.upper()}"\n'
    )
    environ = {"ALICE_KEY": "alice-key-1", "MANY": "bob=bob-key, carol=c=arol", "ONE": "solo"}
    ring = load_keys(keys_file=keys, keys_env="MANY", api_key_env="ONE", environ=environ)
    assert ring.names == ["alice", "bob", "carol", "ci", "default"]
    assert ring.identify("alice-key-1") == "alice"
    assert ring.identify("ci-key-0123") == "ci"
    assert ring.identify("bob-key") == "bob"
    assert ring.identify("c=arol") == "carol"  # only the first '=' separates the name
    assert ring.identify("solo") == "default"
    assert ring.identify("alice-key-") is None and ring.identify("") is None
    assert ring.identify(None) is None
    assert not load_keys(environ={}).enabled


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ('[clients.a]\nkey_env = "NOPE"\n', {}, "key_env names NOPE, but it is unset"),
        ('[clients.a]\nkey_sha256 = "abc"\n', {}, "key_sha256 is not 64 hex digits"),
        ('[clients.a]\nkey = "plain"\n', {}, "give exactly one of key_env and key_sha256"),
        ('[clients."a b"]\nkey_env = "K"\n', {"K": "v"}, "client name 'a b' is not allowed"),
        ('key_env = "K"\n', {"K": "v"}, "must hold only [clients.<name>] tables"),
        (
            '[clients.a]\nkey_env = "K"\n[clients.b]\nkey_env = "K"\n',
            {"K": "same"},
            "clients 'a' and 'b' have the same key",
        ),
    ],
)
def test_bad_keys_files_are_one_clear_error(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_keys(keys_file=keys, environ=environ)
    assert message in caught.value.one_line()
    assert "same" not in caught.value.one_line().replace("the same key", "")


def test_a_bad_keys_env_item_is_named_by_position_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_keys(keys_env="MANY", environ={"MANY": "alice=ok,s3cr3t-bare-key"})
    line = caught.value.one_line()
    assert "item 2 is not client=key" in line and "s3cr3t" not in line
    with pytest.raises(ConfigError, match="unset or empty"):
        load_keys(keys_env="MANY", environ={})


def test_an_old_sqlite_queue_is_migrated_in_place(tmp_path: Path) -> None:
    db_path = tmp_path / "service.sqlite"
    # the queue as the first service release left it: its schema, one finished request
    with sqlite3.connect(db_path) as db:
        db.executescript(MIGRATIONS[0].sqlite)
        db.execute(
            "INSERT INTO requests (request_id, run_id, status, config_path, run_dir, "
            "container_key, namespace_key, attempts, created_at, updated_at) "
            "VALUES ('r1', 'run-1', 'succeeded', '/c.toml', '/runs/run-1', 'app:x', 'ns', 1, "
            "'2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')"
        )
    queue = RunQueue.open(db_path)
    old = queue.get("run-1")
    assert old.status == "succeeded" and old.client is None
    assert queue.history() == [] and queue.workers.list() == []
    with queue.db.read() as tx:
        versions = [row["version"] for row in tx.all("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in MIGRATIONS]
