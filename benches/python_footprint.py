#!/usr/bin/env python3
"""Footprint of a Python bot (interpreter + botcall extension): idle RSS and
CPU while registered and online, and CPU in one call, beside the Rust
echo_bot example in the same run.

    cargo build --bin botcalld --example echo_bot
    python benches/python_footprint.py   # with the botcall wheel installed

The caller is tests/aiortc_peer.py (speech from espeak-ng, echoed back).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("BOTCALLD", str(ROOT / "target/debug/botcalld"))
RUST_ECHO = os.environ.get("RUST_ECHO", str(ROOT / "target/debug/examples/echo_bot"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else 0.0


def start_daemon(tmp: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen(
        [
            BIN,
            "--listen",
            "127.0.0.1:0",
            "--stun-listen",
            "127.0.0.1:0",
            "--open-registration",
            "--state-dir",
            f"{tmp}/state",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    for line in p.stderr:
        m = re.search(r"listening on http://[0-9.]+:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, int(m.group(1))
    raise SystemExit("botcalld did not start")


def start_bot(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        if line.startswith("online as "):
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, line.split()[-1]
    raise SystemExit(f"bot did not come online: {cmd}")


def measure(name: str, cmd: list[str], port: int, wav: str) -> dict:
    bot, agent = start_bot(cmd)
    time.sleep(2)
    c0, t0 = cpu_s(bot.pid), time.time()
    time.sleep(10)
    idle_cpu = (cpu_s(bot.pid) - c0) / (time.time() - t0) * 100
    idle_rss = rss_mb(bot.pid)
    c0, t0 = cpu_s(bot.pid), time.time()
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/aiortc_peer.py"),
            "caller",
            "--ws",
            f"ws://127.0.0.1:{port}/v1/ws",
            "--to",
            agent,
            "--wav",
            wav,
        ],
        capture_output=True,
        text=True,
    )
    call_cpu = (cpu_s(bot.pid) - c0) / (time.time() - t0) * 100
    call_rss = rss_mb(bot.pid)
    bot.kill()
    bot.wait()
    ok = r.returncode == 0
    return {
        "bot": name,
        "idle_rss_mb": round(idle_rss, 1),
        "idle_cpu_pct": round(idle_cpu, 2),
        "call_cpu_pct": round(call_cpu, 2),
        "call_rss_mb": round(call_rss, 1),
        "call_ok": ok,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        daemon, port = start_daemon(tmp)
        try:
            wav = f"{tmp}/speech.wav"
            subprocess.run(
                [
                    "espeak-ng",
                    "-w",
                    wav,
                    "one two three four five six seven eight "
                    "nine ten, the quick brown fox jumps over the lazy dog",
                ],
                check=True,
            )
            keys = {}
            for k in ("py", "rs"):
                keys[k] = f"{tmp}/{k}.jwk"
                subprocess.run([BIN, "keygen", "--out", keys[k]], check=True, capture_output=True)
            url = f"http://127.0.0.1:{port}"
            py_bot = str(ROOT / "examples/python/echo_bot.py")
            rows = []
            for name, cmd in [
                (
                    "python echo_bot.py",
                    [sys.executable, py_bot, "--daemon", url, "--key", keys["py"]],
                ),
                ("rust echo_bot", [RUST_ECHO, "--daemon", url, "--key", keys["rs"]]),
            ]:
                rows.append(measure(name, cmd, port, wav))
            for r in rows:
                print(json.dumps(r))
            py, rs = rows
            if rs["call_cpu_pct"] > 0:
                print(
                    f"in-call CPU ratio python/rust: {py['call_cpu_pct'] / rs['call_cpu_pct']:.2f}"
                )
        finally:
            daemon.kill()


if __name__ == "__main__":
    main()
