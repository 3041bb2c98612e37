"""The run directory: event feeds, ledgers, registry, frontier, checkpoint, manifest."""
