"""What a child started by the service's launcher sees, written to its stdout."""

from __future__ import annotations

import atexit
import json
import os
import sys
import time


def main(args: list[str]) -> int:
    atexit.register(lambda: print("atexit ran", file=sys.stderr))
    seen = {
        "args": args,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "leads_its_group": os.getpgid(0) == os.getpid(),
        "leads_its_session": os.getsid(0) == os.getpid(),
        "probe": os.environ.get("PROBE"),
        "stdin": sys.stdin.read(),
    }
    print(json.dumps(seen))
    if args[0] == "raise":
        raise SystemExit(5)
    return int(args[0])


def sleep(args: list[str]) -> int:
    time.sleep(float(args[0]))
    return 0
