"""Memory per Web Push subscription in botcalld's memory table.

Starts botcalld (loopback, its own state dir), registers one bot, posts N
subscriptions with FCM-length endpoints (~190 bytes), and prints the RSS
growth per subscription from /metrics.

    /tmp/botcall-venv/bin/python benches/push_subs_memory.py target/release/botcalld 20000
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

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SECRET = b"secret-secret-secret-secret-secret-123456"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="botcall-push-mem-")
    keys = os.path.join(tmp, "keys.json")
    with open(keys, "w") as f:
        json.dump({"agents": {"hs-bot": {"kty": "oct", "k": b64(SECRET)}}}, f)
    d = subprocess.Popen(
        [
            binary,
            "--listen",
            "127.0.0.1:0",
            "--stun-listen",
            "off",
            "--state-dir",
            tmp,
            "--keys",
            keys,
            "--push-subject",
            "mailto:ops@botcall.example",
            "--rate-ip",
            "0",
            "--push-per-ip",
            "1000000",
            "--push-per-agent",
            "10000000",
            "--push-max-subscriptions",
            "10000000",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        while port is None:
            line = d.stderr.readline()
            if not line:
                sys.exit(f"botcalld exited: {d.wait()}")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = m and int(m.group(1))
        # Keep reading the log so the daemon never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in d.stderr], daemon=True).start()
        base = f"http://127.0.0.1:{port}"

        def req(method, path, body=None, headers=None):
            r = urllib.request.Request(base + path, method=method, data=body, headers=headers or {})
            with urllib.request.urlopen(r, timeout=10) as f:
                return f.read()

        def rss():
            m = req("GET", "/metrics").decode()
            return float(
                re.search(r"^botcall_process_resident_memory_bytes (\S+)", m, re.M).group(1)
            )

        now = int(time.time())
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = b64(json.dumps({"sub": "hs-bot", "iat": now, "exp": now + 300}).encode())
        sig = b64(hmac.new(SECRET, f"{head}.{claims}".encode(), hashlib.sha256).digest())
        req(
            "POST",
            "/register",
            json.dumps({"agent_id": "hs-bot"}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {head}.{claims}.{sig}"},
        )
        point = (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
        before = rss()
        for i in range(n):
            endpoint = f"https://fcm.googleapis.com/fcm/send/{i:011d}:APA91bH" + "x" * 140
            sub = {
                "endpoint": endpoint,
                "keys": {"p256dh": b64(point), "auth": b64(os.urandom(16))},
            }
            body = json.dumps(
                {"agent_id": "hs-bot", "subscription": sub, "events": ["online", "callback"]}
            )
            req(
                "POST",
                "/v1/push/subscriptions",
                body.encode(),
                {"Content-Type": "application/json"},
            )
        after = rss()
        each = (after - before) / n
        print(f"{n} subscriptions: RSS {before:.0f} -> {after:.0f} bytes: {each:.0f} bytes each")
    finally:
        d.terminate()
        d.wait(timeout=10)


if __name__ == "__main__":
    main()
