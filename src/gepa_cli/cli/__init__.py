"""The `gepa-cli` command tree: thin Typer commands over library functions."""
