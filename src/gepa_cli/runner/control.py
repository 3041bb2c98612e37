"""The runner's side of the engine's `Control` protocol: the clock and stop requests.

A stop request (a STOP file in the run directory, Ctrl-C, SIGTERM, a cancel from the
service) is only *observed* at the engine's next safe point, so the run always ends
with a checkpoint and a manifest and can be resumed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from gepa_cli.artifacts import layout, write_bytes_atomic

STOP_REASONS = ("stop_file", "cancelled", "paused")


def request_stop(run_dir: Path, reason: str = "stop_file") -> Path:
    """Ask the run writing ``run_dir`` to stop at its next safe point."""
    if reason not in STOP_REASONS:
        raise ValueError(f"unknown stop reason {reason!r}")
    stop_file = run_dir / layout.STOP
    # atomic, so a run polling the file never reads it half-written (and empty)
    write_bytes_atomic(stop_file, (reason + "\n").encode("utf-8"))
    return stop_file


def read_stop_reason(stop_file: Path) -> str:
    """The reason written in a STOP file; an empty or unknown one means a plain stop."""
    try:
        text = stop_file.read_text(encoding="utf-8").strip()
    except OSError:
        return "stop_file"
    return text if text in STOP_REASONS else "stop_file"


class RunControl:
    def __init__(
        self,
        run_dir: Path,
        *,
        elapsed_before: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop_file = run_dir / layout.STOP
        self._clock = clock
        self._started = clock()
        self._elapsed_before = elapsed_before
        self._reason: str | None = None

    def elapsed_seconds(self) -> float:
        return self._elapsed_before + self._clock() - self._started

    def request_stop(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason

    def stop_requested(self) -> str | None:
        if self._reason is None and self._stop_file.exists():
            self._reason = read_stop_reason(self._stop_file)
        return self._reason

    @contextmanager
    def signals_stop_the_run(self) -> Iterator[None]:
        """SIGINT and SIGTERM ask for a stop at the next safe point; a second signal
        interrupts at once (KeyboardInterrupt), for a user or supervisor who will not
        wait. Either way the container is shut down on the way out."""
        previous: dict[signal.Signals, object] = {}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if self._reason in ("interrupted", "terminated"):
                raise KeyboardInterrupt
            self.request_stop("interrupted" if signum == signal.SIGINT else "terminated")

        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, on_signal)
        except ValueError:  # not the main thread (e.g. inside a service worker)
            previous.clear()
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
