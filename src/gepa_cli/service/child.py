"""Child entry for a ``config_toml`` submission: `gepa run --json` with another base dir.

`gepa run` resolves a config's relative paths against the file's own directory, but a
submitted config is stored in the service's data dir while its paths mean the allowed
root it was submitted for. The run records no config path, only that base dir, so
`gepa resume RUN_DIR` later continues it from the recorded config and base dir.

    python -m gepa_cli.service.child --config F --base-dir D --run-id ID --output-dir O
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from gepa_cli.config import config_from_dict
from gepa_cli.config.load import read_toml
from gepa_cli.errors import GepaCliError
from gepa_cli.runner import GepaRun, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gepa_cli.service.child")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--base-dir", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        config = config_from_dict(
            read_toml(args.config),
            base_dir=args.base_dir,
            source=str(args.config),
            overrides={"run.run_id": args.run_id, "run.output_dir": args.output_dir},
        )
        result = GepaRun(config, config_path=None, base_dir=args.base_dir).execute()
    except GepaCliError as error:
        print(f"error [{error.error_code}]: {error.one_line()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    sys.stdout.write(orjson.dumps(summary(result), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
