"""Entry point of the `gepa-cli` console script."""

from __future__ import annotations

from gepa_cli.cli.app import app
from gepa_cli.cli.gepa import gepa_app

app.add_typer(gepa_app, name="gepa")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
