"""`gepa service --bind` on a taken port: one error line naming the port and its holder."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from gepa_cli.service.listen import holder
from support.cli import run_cli


def test_a_taken_port_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert holder(port) == (os.getpid(), Path(f"/proc/{os.getpid()}/comm").read_text().strip())
        result = run_cli(
            "gepa",
            "service",
            "--db",
            str(tmp_path / "service.sqlite"),
            "--bind",
            f"127.0.0.1:{port}",
            "--allowed-root",
            str(tmp_path),
        )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error [address_in_use]: --bind 127.0.0.1:{port}: port {port} is")
    assert f"already in use by pid {os.getpid()}" in line
    assert "service on" not in result.stderr


def test_no_holder_for_a_free_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening
    assert holder(port) is None
