"""A real OpenAI-compatible chat-completions server for tests, on 127.0.0.1 and a free port.

It answers with the tiny random-weight Qwen2-VL through the project's transformers backend,
decoding the base64 JPEG frames it receives. `mode` switches behaviour while it runs:
"ok", "error" (HTTP 500 on every request), "unavailable" (HTTP 503: the server is down
behind its gateway) or "hang" (answers only after `hang_s`);
`schedule` gives the mode of single requests by their number (0-based), `delay_s` slows
every answer, and `times` records when each request arrived.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from curation.backends import BackendConfig, Prompt, make_backend


class ChatServer:
    def __init__(self, model_dir: str):
        self.backend = make_backend(
            BackendConfig(model=str(model_dir), device="cpu", temperature=1.0, max_tokens=12)
        )
        self.backend.setup("cpu")
        self.mode = "ok"
        self.hang_s = 30.0
        self.delay_s = 0.0
        self.schedule: dict[int, str] = {}
        self.requests: list[dict] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    mode = server.schedule.get(len(server.requests), server.mode)
                    server.requests.append(body)
                    server.times.append(time.time())
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                time.sleep(server.delay_s)
                if mode == "error":
                    return self._send(500, {"error": "model crashed"})
                if mode == "unavailable":
                    return self._send(503, {"error": "service unavailable"})
                if mode == "hang":
                    time.sleep(server.hang_s)
                    return self._send(503, {"error": "too late"})
                images, text = [], ""
                for part in body["messages"][-1]["content"]:
                    if part["type"] == "image_url":  # JPEG, which the backend decodes
                        images.append(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))
                    elif part["type"] == "text":
                        text = part["text"]
                key = json.dumps(body["messages"])[-64:]
                with server._lock:  # the model is not thread-safe
                    gen = server.backend.generate([Prompt(text, images, key=key)])[0]
                self._send(200, {
                    "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens},
                })  # fmt: skip

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
