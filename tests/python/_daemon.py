"""The real botcalld for the Python tests: started on a free loopback port
(`BOTCALLD`, default target/debug/botcalld), its log drained, killed by
`stop()`. Shared by test_botcall.py and test_agent_card.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOTCALLD = os.environ.get("BOTCALLD", str(ROOT / "target" / "debug" / "botcalld"))


class Daemon:
    def __init__(self, tmp: Path, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.proc = subprocess.Popen(
            [
                BOTCALLD,
                "--listen",
                f"127.0.0.1:{port}",
                "--stun-listen",
                "127.0.0.1:0",
                "--open-registration",
                "--state-dir",
                str(tmp / "state"),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        deadline = time.time() + 30
        for line in self.proc.stderr:
            m = re.search(r"listening on http://([0-9.]+):(\d+)", line)
            if m:
                self.port = int(m.group(2))
                break
            assert time.time() < deadline, "botcalld did not start"
        else:
            raise AssertionError("botcalld exited")
        # Keep draining its log so it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def request(self, path: str, method: str = "GET", body: dict | None = None, tok: str = ""):
        """One HTTP request; returns (status, body text), errors included."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
