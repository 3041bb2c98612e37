"""Entry point of the `gepa-cli` console script."""

from __future__ import annotations

from gepa_cli.cli.app import app
from gepa_cli.cli.cache import cache_app
from gepa_cli.cli.container import container_app
from gepa_cli.cli.events import events_app
from gepa_cli.cli.gepa import gepa_app
from gepa_cli.cli.gepa_run import register as _register_run_commands
from gepa_cli.cli.online import online_app
from gepa_cli.cli.query import query
from gepa_cli.cli.remote import remote_app
from gepa_cli.cli.service import register as _register_service_command
from gepa_cli.cli.view import register as _register_view_commands
from gepa_cli.cli.workspace import workspace_app

_register_run_commands()
_register_service_command()
app.add_typer(gepa_app, name="gepa")
app.add_typer(events_app, name="events")
app.add_typer(cache_app, name="cache")
app.add_typer(container_app, name="container")
app.add_typer(workspace_app, name="workspace")
app.add_typer(remote_app, name="remote")
app.add_typer(online_app, name="online")
app.command("query")(query)
_register_view_commands()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
