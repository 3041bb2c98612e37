"""The service's listening socket, bound before anything is announced, and who holds a
port that is taken (from /proc, where the OS tells)."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

from gepa_cli.service.errors import AddressInUseError

LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; a taken or forbidden address is an
    `AddressInUseError` naming it (and the process holding it)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise AddressInUseError(
            f"--bind {host}:{port}: cannot resolve {host!r} ({exc.strerror})",
            hint="use an IP address or a host name of this machine",
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            held = holder(port)
            by = f" by pid {held[0]} ({held[1]})" if held else ""
            raise AddressInUseError(
                f"--bind {host}:{port}: port {port} is already in use{by}",
                hint="stop that process, or pick a free port with --bind HOST:PORT",
                port=port,
            ) from None
        raise AddressInUseError(
            f"--bind {host}:{port}: cannot listen there ({exc.strerror})",
            hint="pick another address with --bind HOST:PORT",
            port=port,
        ) from None
    return sock


def holder(port: int, proc: Path = Path("/proc")) -> tuple[int, str] | None:
    """(pid, command name) of a process listening on TCP ``port``, when /proc tells
    (Linux; other users' processes are invisible without privileges)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == LISTEN:
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == port:
                        inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue  # gone, or not ours to look at
        for fd in fds:
            try:
                # one fd closed while we look must not hide the others
                if os.readlink(fd) in inodes:
                    return int(entry.name), (entry / "comm").read_text().strip()
            except OSError:
                continue
    return None
