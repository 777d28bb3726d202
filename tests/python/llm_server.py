#!/usr/bin/env python3
"""An OpenAI-compatible chat server for the voice bot's tests: a real HTTP
server on loopback that answers POST /v1/chat/completions with a canned
completion and prints every request it got as one line `REQUEST {json}`.

    python tests/python/llm_server.py --reply "the weather is nice today"
    python tests/python/llm_server.py --status 500    # every answer an error
    python tests/python/llm_server.py --hang          # accept, never answer

Prints `LISTENING <port>` once it listens on 127.0.0.1:<ephemeral port>.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reply", default="hello from the model")
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--garbage", action="store_true", help="answer 200 with a non-completion")
    a = p.parse_args()
    lock = threading.Lock()
    n = 0

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: stdout is the record
            pass

        def send_json(self, status: int, obj: dict) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def error(self, status: int, message: str) -> None:
            self.send_json(status, {"error": {"message": message, "type": "invalid_request"}})

        def do_POST(self) -> None:
            nonlocal n
            if self.path != "/v1/chat/completions":
                return self.error(404, f"no route {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self.error(400, "a JSON body is required")
            try:
                req = json.loads(self.rfile.read(length))
                messages = req["messages"]
                assert isinstance(req["model"], str) and messages[-1]["role"] == "user"
            except (ValueError, KeyError, IndexError, TypeError, AssertionError):
                return self.error(400, "not a chat completion request")
            with lock:
                n += 1
                print("REQUEST " + json.dumps(req), flush=True)
            if a.hang:
                time.sleep(3600)
                return None
            if a.status != 200:
                return self.error(a.status, "the model is overloaded")
            if a.garbage:
                return self.send_json(200, {"object": "not.a.completion"})
            return self.send_json(
                200,
                {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": req["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": a.reply},
                            "finish_reason": "stop",
                        }
                    ],
                },
            )

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(f"LISTENING {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
