"""Read a TOML config, apply overrides, validate, and explain every failure in one line."""

from __future__ import annotations

import difflib
import os
import re
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gepa_cli.config.models import APP_OBJECT, GepaConfig
from gepa_cli.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

# The narrow set of fields CI and acceptance runs may override (design.md section 2).
ENV_OVERRIDES: dict[str, str] = {
    "GEPA_CLI_RUN_ID": "run.run_id",
    "GEPA_CLI_OUTPUT_DIR": "run.output_dir",
    "GEPA_CLI_CACHE_MODE": "cache.mode",
    "GEPA_CLI_CACHE_PATH": "cache.path",
    "GEPA_CLI_PROPOSER_BACKEND": "proposer.backend",
}

# Paths written in the file are relative to the file; paths from flags or env to the cwd.
PATH_FIELDS = ("run.output_dir", "cache.path", "proposer.prompt_template")

SECRET_KEY_NAMES = re.compile(r"^(api[_-]?key|secret|token|password|access[_-]?key)$", re.I)
SECRET_VALUES = re.compile(
    r"(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{8,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})"
)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist", hint="check the path given to --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}", hint="fix the syntax at that line"
        ) from None


def load_config(
    path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    app_object: bool = False,
) -> GepaConfig:
    """Load and validate a config file.

    ``overrides`` maps dotted field names (``"cache.mode"``) to values from CLI flags;
    they win over the environment overrides, which win over the file. ``app_object``:
    the container app is handed in from Python, so [container] names no url/app/command.
    """
    path = Path(path)
    raw = read_toml(path)
    return config_from_dict(
        raw,
        base_dir=path.resolve().parent,
        source=str(path),
        overrides=overrides,
        environ=environ,
        app_object=app_object,
    )


def config_from_dict(
    raw: dict[str, Any],
    *,
    base_dir: Path,
    source: str = "<config>",
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    app_object: bool = False,
) -> GepaConfig:
    reject_secrets(raw, source)
    data = _deep_copy(raw)
    for dotted in PATH_FIELDS:
        resolve_path(data, dotted, base_dir)
    origin: dict[str, str] = {}
    env = os.environ if environ is None else environ
    for var, dotted in ENV_OVERRIDES.items():
        value = env.get(var)
        if value:
            _set(data, dotted, _absolute(value) if dotted in PATH_FIELDS else value)
            origin[dotted] = f"environment variable {var}"
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        _set(data, dotted, _absolute(value) if dotted in PATH_FIELDS else value)
        origin[dotted] = "command-line flag"
    try:
        config = GepaConfig.model_validate(data, context={APP_OBJECT: app_object})
    except ValidationError as exc:
        raise explain(exc, source, origin) from None
    cache = config.cache
    if cache.mode == "readonly" and not cache.path.is_dir():
        mode_from = origin.get("cache.mode", source)
        raise ConfigError(
            f"{source}: 'cache.path' {cache.path} does not exist, but cache mode is readonly "
            f"(from {mode_from}) and replays from an existing cache",
            hint="record one with mode 'readwrite' first, or point cache.path at it",
            field="cache.path",
        )
    return config


def reject_secrets(node: Any, source: str, prefix: str = "") -> None:
    """Refuse anything that looks like a credential value: configs name env vars only."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{prefix}.{key}" if prefix else str(key)
            if SECRET_KEY_NAMES.match(str(key)) and value not in (None, ""):
                raise ConfigError(
                    f"{source}: '{where}' holds a secret value",
                    hint=f"remove it and set '{_env_hint(where)}' to the name of an "
                    "environment variable that holds the key",
                )
            reject_secrets(value, source, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            reject_secrets(item, source, f"{prefix}[{index}]")
    elif isinstance(node, str) and SECRET_VALUES.search(node):
        raise ConfigError(
            f"{source}: '{prefix}' contains what looks like an API key",
            hint="never write keys in config; put the key in an environment variable and "
            f"name it with '{_env_hint(prefix)}'",
        )


def _env_hint(where: str) -> str:
    section = where.split(".")[0].split("[")[0]
    return (
        f"{section}.api_key_env"
        if section in {"container", "policy", "proposer", "upstream"}
        else ("api_key_env")
    )


def explain(
    exc: ValidationError,
    source: str,
    origin: Mapping[str, str] | None = None,
    root: type[BaseModel] = GepaConfig,
) -> ConfigError:
    """One `ConfigError` line for the first problem pydantic found in a ``root`` model."""
    origin = origin or {}
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"] if not str(part).startswith("function-")]
    dotted = ".".join(loc) if loc else "(top level)"
    where = f"{source}: '{dotted}'"
    if dotted in origin:
        where += f" (from {origin[dotted]})"
    kind = error["type"]
    if kind == "extra_forbidden":
        suggestion = _closest(loc, root)
        hint = f"did you mean '{suggestion}'?" if suggestion else _valid_keys_hint(loc, root)
        return ConfigError(f"{where} is not a known key", hint=hint, field=dotted)
    if kind == "missing":
        return ConfigError(f"{where} is required but missing", hint="add it", field=dotted)
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    count = exc.error_count()
    more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
    return ConfigError(f"{where}: {message}{more}", field=dotted)


def _model_at(loc: list[str], root: type[BaseModel]) -> type[BaseModel] | None:
    model: type[BaseModel] = root
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        if field is None:
            return None
        nested = [
            arg
            for arg in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if not nested:
            return None
        model = nested[0]
    return model


def _closest(loc: list[str], root: type[BaseModel]) -> str | None:
    model = _model_at(loc, root)
    if model is None or not loc:
        return None
    matches = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _valid_keys_hint(loc: list[str], root: type[BaseModel]) -> str:
    model = _model_at(loc, root)
    if model is None:
        return "remove it"
    section = ".".join(loc[:-1]) or "the top level"
    return f"valid keys in {section}: {', '.join(model.model_fields)}"


def _deep_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _deep_copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_deep_copy(item) for item in node]
    return node


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{part}' must be a table to hold '{dotted}'")
        node = child
    node[leaf] = value


def resolve_path(data: dict[str, Any], dotted: str, base_dir: Path) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(leaf), str):
        candidate = Path(node[leaf]).expanduser()
        node[leaf] = str(candidate if candidate.is_absolute() else base_dir / candidate)


def _absolute(value: Any) -> Any:
    return str(Path(value).expanduser().resolve()) if isinstance(value, (str, Path)) else value
