"""A TCP proxy on loopback that cuts the first event stream mid-way: a dropped connection,
for real, between a client and a service."""

from __future__ import annotations

import contextlib
import socket
import threading

from .support import free_port


class DroppingProxy:
    def __init__(self, target_port: int, *, drop_after_bytes: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.drop_after = drop_after_bytes
        self.drops = 0
        self.event_requests: list[bytes] = []  # the request head of each event stream
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stopped.set()
        self._server.close()

    def __enter__(self) -> DroppingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            state = {"stream": False, "sent": 0, "drop": False}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if b"/events" in data.split(b"\r\n", 1)[0]:
                    with self._lock:
                        self.event_requests.append(data)
                        state["stream"], state["sent"] = True, 0
                        # only the first event stream is cut
                        state["drop"] = len(self.event_requests) == 1
                upstream.sendall(data)
        _close(client, upstream)

    def _down(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(4096):
                client.sendall(data)
                if state["stream"]:
                    state["sent"] += len(data)
                    if state["drop"] and state["sent"] >= self.drop_after:
                        with self._lock:
                            self.drops += 1
                        break
        _close(client, upstream)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
