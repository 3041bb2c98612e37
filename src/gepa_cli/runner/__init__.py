"""Wires one run together from a validated config (design.md section 1)."""

from gepa_cli.runner.control import RunControl, request_stop
from gepa_cli.runner.run import GepaRun, RunResult, summary

__all__ = ["GepaRun", "RunControl", "RunResult", "request_stop", "summary"]
