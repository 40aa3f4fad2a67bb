"""A loopback server that answers like an OpenAI-compatible chat endpoint."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler


class FakeModel(BaseHTTPRequestHandler):
    """Speaks POST /v1/chat/completions like an OpenAI-compatible server."""

    answer = "Prefer big firms."
    status = 200
    error_body = b'{"error": {"message": "overloaded"}}'  # the answer when status is not 200
    seen: list = []

    @classmethod
    def reset(cls) -> None:
        """Each test starts from a server that answers 200 with the default text."""
        cls.seen, cls.status, cls.answer = [], 200, "Prefer big firms."
        cls.error_body = b'{"error": {"message": "overloaded"}}'

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeModel.seen.append((self.path, self.headers.get("Authorization"), body))
        if self.status != 200:
            self.send_response(self.status)
            self.end_headers()
            self.wfile.write(self.error_body)
            return
        out = json.dumps({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": self.answer},
             "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass
