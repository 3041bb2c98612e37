"""API keys, each with a client name: who may call the service, and who submitted what.

Keys come from a keys file (TOML), from one environment variable listing several, or
from ``--api-key-env`` (one key, client ``default``). A key's value is never written
anywhere: the file names the variable that holds it (``key_env``) or gives its SHA-256
(``key_sha256``), and the service keeps only digests. A presented key is hashed and
compared with every digest in constant time.

    # keys.toml
    [clients.alice]
    key_env = "GEPA_KEY_ALICE"        # the variable holding alice's key
    [clients.ci]
    key_sha256 = "9f86d081884c7d65..." # or the SHA-256 (hex) of the key

    GEPA_SERVICE_KEYS="alice=<key>,ci=<key>"   # --keys-env GEPA_SERVICE_KEYS
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gepa_cli.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class KeyRing:
    """Client name per key digest; empty means the service is open (no key needed)."""

    clients: tuple[tuple[str, bytes], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.clients)

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _ in self.clients})

    def identify(self, presented: str | None) -> str | None:
        """The client whose key this is, or None; every digest is compared."""
        if not presented:
            return None
        given = digest(presented)
        found = None
        for name, expected in self.clients:
            if hmac.compare_digest(given, expected):
                found = name
        return found


def _check_name(name: str, where: str) -> None:
    if not CLIENT_NAME.match(name):
        raise ConfigError(
            f"{where}: client name {name!r} is not allowed",
            hint="use 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit",
        )


def _from_file(path: Path, environ: Mapping[str, str]) -> list[tuple[str, bytes]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--keys-file {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--keys-file {path} is not valid TOML: {exc}") from None
    clients = data.get("clients")
    if not isinstance(clients, dict) or not clients or set(data) - {"clients"}:
        raise ConfigError(
            f"--keys-file {path} must hold only [clients.<name>] tables",
            hint='e.g. [clients.alice] with key_env = "ALICE_KEY"',
        )
    found = []
    for name, entry in clients.items():
        where = f"{path} [clients.{name}]"
        _check_name(name, where)
        if not isinstance(entry, dict) or set(entry) not in ({"key_env"}, {"key_sha256"}):
            raise ConfigError(
                f"{where}: give exactly one of key_env and key_sha256",
                hint="key_env names the variable holding the key; key_sha256 is its hex digest",
            )
        if "key_env" in entry:
            value = environ.get(str(entry["key_env"]), "")
            if not value:
                raise ConfigError(
                    f"{where}: key_env names {entry['key_env']}, but it is unset or empty",
                    hint=f"export {entry['key_env']}=<key> before starting the service",
                )
            found.append((name, digest(value)))
        else:
            hexed = str(entry["key_sha256"]).lower()
            if not HEX_DIGEST.match(hexed):
                raise ConfigError(
                    f"{where}: key_sha256 is not 64 hex digits",
                    hint="use the output of `printf %s KEY | sha256sum`",
                )
            found.append((name, bytes.fromhex(hexed)))
    return found


def _from_env(variable: str, environ: Mapping[str, str]) -> list[tuple[str, bytes]]:
    value = environ.get(variable, "")
    if not value.strip():
        raise ConfigError(
            f"--keys-env names {variable}, but it is unset or empty",
            hint=f'export {variable}="client=key,other=key2" before starting the service',
        )
    found = []
    for index, item in enumerate(re.split(r"[,\s]+", value.strip()), start=1):
        name, sep, key = item.partition("=")
        if not sep or not key:
            # the item may be a bare key: never echo it
            raise ConfigError(
                f"--keys-env {variable}: item {index} is not client=key",
                hint=f'write {variable}="alice=<key>,ci=<key>"',
            )
        _check_name(name, f"--keys-env {variable} item {index}")
        found.append((name, digest(key)))
    return found


def load_keys(
    *,
    keys_file: Path | None = None,
    keys_env: str | None = None,
    api_key_env: str | None = None,
    environ: Mapping[str, str],
) -> KeyRing:
    clients: list[tuple[str, bytes]] = []
    if keys_file is not None:
        clients += _from_file(keys_file, environ)
    if keys_env:
        clients += _from_env(keys_env, environ)
    if api_key_env:
        key = environ.get(api_key_env, "")
        if not key:
            raise ConfigError(
                f"--api-key-env names {api_key_env}, but it is unset or empty",
                hint=f"export {api_key_env}=<key> before starting the service",
            )
        clients.append(("default", digest(key)))
    owners: dict[bytes, str] = {}
    for name, value in clients:
        if owners.get(value, name) != name:
            raise ConfigError(
                f"clients {owners[value]!r} and {name!r} have the same key",
                hint="give every client its own key, so runs record who submitted them",
            )
        owners[value] = name
    return KeyRing(tuple(clients))
