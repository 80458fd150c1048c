"""A fake 3Commas custom-signal receiver on 127.0.0.1 (``POST /trade_signal/trading_view``).

It answers as 3Commas does for a JSON body: 200 with an empty body when accepted. Knobs:
``fail_next(status, body)`` (the next request answers that), ``hang_next(seconds)`` (the next
request is recorded, then the answer is held: a client timeout after 3Commas got it).
``received``: every JSON body in arrival order. ``url``: the endpoint.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/trade_signal/trading_view"


class FakeThreeCommas:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self._faults: list[tuple[int, str]] = []
        self._hang = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != PATH:
                    return self._answer(404, "Not Found")
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return self._answer(400, "bad content type")
                fake.received.append(json.loads(raw))
                if fake._hang:
                    hang, fake._hang = fake._hang, 0.0
                    time.sleep(hang)
                if fake._faults:
                    return self._answer(*fake._faults.pop(0))
                return self._answer(200, "")

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeThreeCommas:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status: int, body: str = "") -> None:
        self._faults.append((status, body))

    def hang_next(self, seconds: float) -> None:
        self._hang = seconds
