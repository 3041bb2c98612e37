"""`python -m scripts.llm_server {fetch,build,start,stop,status}` (see __init__)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __doc__ as PACKAGE_DOC
from .build import build_server
from .common import PORT_ENV, LlmServerError, say
from .model import MODEL_ALIAS, fetch_model
from .serve import DEFAULT_PORT, log_file, metrics, running, start, stop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(PACKAGE_DOC or "").split("\n\n")[0])
    parser.add_argument("command", choices=["fetch", "build", "start", "stop", "status"])
    args = parser.parse_args(argv)
    port = int(os.environ.get(PORT_ENV) or DEFAULT_PORT)
    try:
        if args.command == "fetch":
            print(fetch_model())
        elif args.command == "build":
            print(build_server())
        elif args.command == "start":
            server = start(port)
            say(f"running at {server.base_url} (pid {server.pid}, model {MODEL_ALIAS!r})")
            say(f"log: {log_file()}; stop it with `make llm-server-stop`")
        elif args.command == "stop":
            stopped = stop()
            say(f"stopped pid {stopped.pid}" if stopped else "no server was running")
        else:
            current = running()
            if current is None:
                say("not running (start it with `make llm-server`)")
                return 1
            counters = metrics(current.url)
            say(
                f"running at {current.base_url} (pid {current.pid}, model {MODEL_ALIAS!r}); "
                f"{counters.get('prompt_tokens_total', 0):.0f} prompt tokens read, "
                f"{counters.get('prompt_tokens_cached_total', 0):.0f} from its cache, "
                f"{counters.get('tokens_predicted_total', 0):.0f} written"
            )
    except LlmServerError as exc:
        print(f"llm-server: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
