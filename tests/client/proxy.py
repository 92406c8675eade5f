"""A TCP proxy in front of a live server that cuts event streams: how a dropped connection looks to a client."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class StreamRequest:
    """An events request that went through the proxy, with its Last-Event-ID header (None without one)."""

    path: str
    last_event_id: str | None


@dataclass
class CuttingProxy:
    """Forwards 127.0.0.1:port → upstream. The first `cuts` responses that carry `marker` (a byte string only an
    event stream contains) are cut right after the chunk that carried it — or before it, with `forward_marked`
    false: the socket is shut down, as a dropped network or a restarted load balancer does it."""

    upstream_port: int
    marker: bytes = b"event: node.started"
    cuts: int = 1
    forward_marked: bool = True
    requests: list[StreamRequest] = field(default_factory=list)
    cut_count: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._client_to_upstream, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._upstream_to_client, args=(upstream, client), daemon=True).start()

    def _client_to_upstream(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                for match in re.finditer(rb"GET (\S+/events)\S* HTTP/1\.1\r\n(.*?)\r\n\r\n", data, re.S):
                    header = re.search(rb"(?im)^last-event-id:\s*(\S+)", match.group(2))
                    with self._lock:
                        self.requests.append(StreamRequest(match.group(1).decode(),
                                                           header.group(1).decode() if header else None))
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _upstream_to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                with self._lock:
                    cut = self.marker in data and self.cut_count < self.cuts
                    if cut:
                        self.cut_count += 1
                if not cut or self.forward_marked:
                    client.sendall(data)
                if cut:
                    break
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
