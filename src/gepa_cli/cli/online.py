"""`gepa-cli online ...`: create and control online sessions of a running service.

A thin layer over `gepa_cli.online.OnlineClient`: every command is one call of the
control API (docs/online.md). The service's URL comes from ``--url`` or
``GEPA_CLI_SERVICE_URL``; its key from the variable named by ``--api-key-env``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer

from gepa_cli.cli.app import new_group
from gepa_cli.errors import ConfigError

if TYPE_CHECKING:
    from gepa_cli.online.client import OnlineClient

# gepa_cli.online is imported inside the commands: it brings the service's web stack,
# which every other command (and every run a service starts) would pay for at startup

online_app = new_group("Create and control online sessions (a proxy that learns).")

URL_OPTION = typer.Option(
    "http://127.0.0.1:8879", "--url", envvar="GEPA_CLI_SERVICE_URL", help="The service's URL."
)
KEY_OPTION = typer.Option(
    None, "--api-key-env", help="The env var holding the service's control key."
)
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on stdout.")


def _client(url: str, api_key_env: str | None) -> OnlineClient:
    from gepa_cli.online.client import OnlineClient

    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(
                f"--api-key-env names {api_key_env}, but it is unset or empty",
                hint=f"export {api_key_env}=<the service's key>",
            )
    return OnlineClient(url, api_key=key)


def _out(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(human)


def _line(info: dict[str, Any]) -> str:
    shares = ", ".join(f"{k} {v:.2f}" for k, v in (info.get("shares") or {}).items())
    return (
        f"{info['session_id']}: {info.get('state')}, best {info.get('incumbent_id')}, "
        f"served {info.get('served')}, rewards {info.get('rewards')}, "
        f"proposals {info.get('proposals')}; traffic {shares or '-'}"
    )


@online_app.command("validate")
def validate(
    config: Path = typer.Option(..., "--config", "-c", help="The session's TOML file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a session config without a service."""
    from gepa_cli.online.config import load_online_config

    parsed = load_online_config(config)
    _out(
        parsed.resolved_dict(),
        as_json,
        f"{config}: valid; modules {', '.join(parsed.target_modules)}, injection "
        f"{parsed.online.injection}, upstream {parsed.upstream.base_url}",
    )


@online_app.command("create")
def create(
    config: Path = typer.Option(..., "--config", "-c", help="The session's TOML file."),
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a session from a config (a path the service may read: an allowed root)."""
    with _client(url, api_key_env) as client:
        info = client.create(config_path=config.resolve())
        proxy = client.proxy_base_url(info["session_id"])
    _out({**info, "proxy_base_url": proxy}, as_json, f"{_line(info)}\nproxy base_url: {proxy}")


@online_app.command("list")
def listing(
    url: str = URL_OPTION, api_key_env: str | None = KEY_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Every session of the service."""
    with _client(url, api_key_env) as client:
        sessions = client.sessions()
    lines = [
        f"{s['session_id']}: {s['state']}" + (f" ({s['error']})" if s.get("error") else "")
        for s in sessions
    ]
    _out(sessions, as_json, "\n".join(lines) or "no sessions")


@online_app.command("show")
def show(
    session_id: str,
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A session's state, traffic, usage and budget."""
    with _client(url, api_key_env) as client:
        info = client.get(session_id)
    _out(info, as_json, _line(info))


@online_app.command("prompt")
def prompt(
    session_id: str,
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The best candidate's texts."""
    with _client(url, api_key_env) as client:
        best = client.prompt(session_id)
    texts = "\n".join(f"--- {name}\n{text}" for name, text in best["texts"].items())
    _out(best, as_json, f"best {best['candidate_id']} ({best['rewards']} rewards)\n{texts}")


@online_app.command("candidates")
def candidates(
    session_id: str,
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Candidates with their reward statistics and traffic shares."""
    with _client(url, api_key_env) as client:
        rows = client.candidates(session_id)
    lines = [
        f"{c['candidate_id']}  {c['role']:<10} share {c['share']:.2f}  served {c['served']}  "
        f"rewards {c['rewards']}  mean {c['mean'] if c['mean'] is None else round(c['mean'], 4)}"
        for c in rows
    ]
    _out(rows, as_json, "\n".join(lines))


def _control(action: str) -> Any:
    def command(
        session_id: str,
        reason: str | None = typer.Option(None, "--reason", help="Recorded with the change."),
        url: str = URL_OPTION,
        api_key_env: str | None = KEY_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        with _client(url, api_key_env) as client:
            info = getattr(client, action)(session_id, reason)
        _out(info, as_json, _line(info))

    command.__doc__ = {
        "pause": "Stop learning; serve the best until resumed.",
        "resume": "Learn again after a pause.",
    }[action]
    return command


online_app.command("pause")(_control("pause"))
online_app.command("resume")(_control("resume"))


@online_app.command("cancel")
def cancel(
    session_id: str,
    reason: str | None = typer.Option(None, "--reason", help="Recorded with the change."),
    serve: str | None = typer.Option(
        None, "--serve", help="Serve this candidate from now on (default: the best)."
    ),
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """End learning for good (terminal); the proxy keeps serving."""
    with _client(url, api_key_env) as client:
        info = client.cancel(session_id, reason, serve)
    _out(info, as_json, _line(info))


@online_app.command("reward")
def reward(
    session_id: str,
    rollout_id: str,
    score: float = typer.Option(..., "--score", help="The reward, a finite number."),
    feedback: str | None = typer.Option(None, "--feedback", help="Why, in words."),
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Reward one rollout (its x-gepa-rollout-id)."""
    with _client(url, api_key_env) as client:
        result = client.reward(session_id, rollout_id, score, feedback=feedback)
    done = "recorded" if result["recorded"] else "already recorded (same reward)"
    _out(result, as_json, f"{rollout_id} ({result['candidate_id']}): {done}")


@online_app.command("events")
def events(
    session_id: str,
    after: int = typer.Option(-1, "--after", help="Only events with a larger seq."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new events."),
    url: str = URL_OPTION,
    api_key_env: str | None = KEY_OPTION,
) -> None:
    """Events as JSON lines (``--follow``: as they happen)."""
    with _client(url, api_key_env) as client:
        feed = (
            client.follow(session_id, after=after)
            if follow
            else client.events(session_id, after=after)
        )
        for event in feed:
            typer.echo(orjson.dumps(event).decode())
