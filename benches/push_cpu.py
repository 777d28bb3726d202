"""Daemon CPU per Web Push message: encryption (RFC 8291), a VAPID signature,
one loopback HTTP request and its answer.

Starts botcalld and the loopback push service (tests/push_service.py, which
decrypts every message), subscribes N people to one bot, connects the bot,
and divides the daemon's CPU time (utime + stime, /proc) spent until all N
messages arrived by N.

    /tmp/botcall-venv/bin/python benches/push_cpu.py target/release/botcalld 1000
"""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from websockets.sync.client import connect

SECRET = b"secret-secret-secret-secret-secret-123456"
HERE = os.path.dirname(os.path.abspath(__file__))


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(url, method="GET", body=None, headers=None):
    r = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    with urllib.request.urlopen(r, timeout=30) as f:
        return f.read()


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="botcall-push-cpu-")
    keys = os.path.join(tmp, "keys.json")
    with open(keys, "w") as f:
        json.dump({"agents": {"hs-bot": {"kty": "oct", "k": b64(SECRET)}}}, f)
    d = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--stun-listen", "off", "--state-dir", tmp,
         "--keys", keys, "--push-subject", "mailto:ops@botcall.example", "--rate-ip", "0",
         "--push-allow-loopback", "--push-per-ip", "1000000", "--push-per-agent", "1000000",
         "--push-max-subscriptions", "1000000"],
        stderr=subprocess.PIPE, text=True)  # fmt: skip
    ps = None
    try:
        port = None
        while port is None:
            line = d.stderr.readline()
            if not line:
                sys.exit(f"botcalld exited: {d.wait()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = m and int(m.group(1))
        threading.Thread(target=lambda: [None for _ in d.stderr], daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        ps = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "..", "tests", "push_service.py"), base],
            stdout=subprocess.PIPE, text=True)  # fmt: skip
        push = "http://127.0.0.1:" + ps.stdout.readline().split()[1]
        now = int(time.time())
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = b64(json.dumps({"sub": "hs-bot", "iat": now, "exp": now + 300}).encode())
        sig = b64(hmac.new(SECRET, f"{head}.{claims}".encode(), hashlib.sha256).digest())
        token = f"{head}.{claims}.{sig}"
        get(f"{base}/register", "POST", json.dumps({"agent_id": "hs-bot"}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})  # fmt: skip
        for i in range(n):
            sub = json.loads(get(f"{push}/keys/s{i}"))
            body = {"agent_id": "hs-bot", "subscription": sub, "events": ["online"]}
            get(f"{base}/v1/push/subscriptions", "POST", json.dumps(body).encode(),
                {"Content-Type": "application/json"})  # fmt: skip
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        with connect(base.replace("http", "ws") + "/v1/ws") as ws:
            ws.send(json.dumps({"type": "hello", "role": "bot", "token": token}))
            ws.recv()
            while len(json.loads(get(f"{push}/log"))) < n:
                time.sleep(0.2)
            cpu1, t1 = cpu_seconds(d.pid), time.monotonic()
        log = json.loads(get(f"{push}/log"))
        ok = sum(1 for m in log if m.get("status") == 201 and m["vapid"]["ok"] and "payload" in m)
        print(
            f"{n} messages ({ok} decrypted and VAPID-verified): daemon CPU "
            f"{(cpu1 - cpu0) * 1e6 / n:.0f} us/message, wall {t1 - t0:.1f} s"
        )
    finally:
        if ps:
            ps.terminate()
        d.terminate()
        d.wait(timeout=10)


if __name__ == "__main__":
    main()
