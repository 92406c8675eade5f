"""A real HTTP receiver for callbacks: scripted answers, every request recorded."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    """`ThreadingHTTPServer` on 127.0.0.1. `script` answers requests in order, then 200 for the rest."""

    def __init__(self, port: int = 0):
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._cond:
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                    receiver.requests.append(Received(at=time.time(), path=self.path,
                                                      headers={k.lower(): v for k, v in self.headers.items()},
                                                      body=body))
                    receiver._cond.notify_all()
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up waiting and hung up
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, *answers: Answer | int) -> None:
        with self._cond:
            self.script.extend(a if isinstance(a, Answer) else Answer(status=a) for a in answers)

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Block until at least `count` requests arrived; return them all."""
        deadline = time.time() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"expected {count} callbacks, got {len(self.requests)}")
                self._cond.wait(left)
            return list(self.requests)
