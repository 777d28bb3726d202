#!/usr/bin/env python3
"""relay_latency.py (BotCall copy of ../shared/bench/relay_latency.py: the botcall adapter is fixed and tested) - signaling relay round trip through a WebSocket server, optionally
while N idle connections are held by wsload.

One round trip: caller A --offer--> server --> bot B, B --answer--> server --> A, timed at A
from just before send() to the moment A's reader gets the answer (perf_counter_ns). Round
trips run one at a time (no queueing), rotating over --pairs caller/bot pairs; a sequence
number travels inside the SDP's o= line so answers are matched to offers whatever the
protocol. Prints p50/p90/p99/p99.9/max in microseconds, the server's CPU time per round trip
(all its threads, from /proc/PID/task/*/schedstat; also net of its idle rate measured just
before) and the client's own CPU time per round trip (this Python process: its overhead is
inside every latency figure, the same for every server measured with this script).

Protocols are adapters (ADAPTERS below): how to build URLs, say hello, wrap an offer and an
answer, and recognise them on arrival. Add one per server; `--adapter NAME`.

The client costs ~300-450 us of CPU per round trip on this machine (asyncio; ~25 % less with
--uvloop), all of it inside the latency: compare servers with the same client settings in
the same run, and use server_cpu_us_per_rt as the noise-robust figure.

Setup (Debian 12, PyPI; --idle needs wsload from bench/load/build.sh):
  python3 -m venv /tmp/botcall-peers/venv && /tmp/botcall-peers/venv/bin/pip install websockets==17.4 uvloop==0.23.0
Examples (loopback only; everything it starts is ended by PID and gets SIGTERM if this
script dies; bounded by --max-run):
  S=../shared   # from the project root
  PY=/tmp/botcall-peers/venv/bin/python
  $PY $S/bench/relay_latency.py --adapter peerjs --port 18300 \\
      --server-cmd "$S/peers/peerjs/run.sh {PORT}" --idle 10000 --n 2000 --warmup 500
  $PY $S/bench/relay_latency.py --url ws://127.0.0.1:9000 --server-pid 1234   # running server
"""
import argparse
import asyncio
import ctypes
import inspect
import json
import os
import random
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from urllib.parse import quote, urlparse

try:
    from websockets.asyncio.client import connect
except ImportError:  # pragma: no cover
    sys.exit("needs websockets >= 13 (pip install websockets==17.4 in a venv)")

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- adapters
# An adapter is a class taking the --adapter-opt dict, with:
#   name, heartbeat = (text, seconds) | None, idle_args = [wsload flags]
#   peer_id(role, i) -> id of pair i's "caller" / "bot";  url(base, role, id);  idle_url(base)
#   async hello(ws, role, id)            handshake after connect, raise if refused
#   offer(caller, bot, sdp, seq) -> str  frame the caller sends
#   incoming(msg) -> (sdp, ctx) | None   at the bot: the relayed offer (ctx: what answer needs)
#   answer(bot, ctx, sdp) -> str         frame the bot sends back
#   answered(msg) -> (sdp, ctx) | None   at the caller: the relayed answer
#   async finish(caller_ws, bot_ws, ctx) after each round trip, untimed (e.g. hang up)
class PeerJS:
    """PeerJS server (npm "peer" 1.0.x), message shapes as sent by the peerjs 1.5 client.
    WS  /peerjs?key=K&id=ID&token=T ; server greets {"type":"OPEN"} (or ERROR + close).
    A -> {"type":"OFFER","dst":B,"payload":{"sdp":{"type":"offer","sdp":..},"type":"media",
          "connectionId":..}}; the server forwards {type,src,dst,payload} to B;
    ANSWER the same way back. Clients must send {"type":"HEARTBEAT"} (peerjs: every 5 s) or
    are dropped after alive_timeout (CLI default 60 s); the server never answers them."""
    name = "peerjs"
    heartbeat = ('{"type":"HEARTBEAT"}', 5.0)

    def __init__(self, opts):
        self.key = opts.get("key", "peerjs")
        self.token = opts.get("token", "bench")

    def peer_id(self, role, i):
        return f"rl-{'a' if role == 'caller' else 'b'}-{i}"

    def url(self, base, role, pid):
        return f"{base}/peerjs?key={quote(self.key)}&id={quote(pid)}&token={quote(self.token)}"

    def idle_url(self, base):  # for wsload: {id} = its agent id
        return f"{base}/peerjs?key={quote(self.key)}&id={{id}}&token={quote(self.token)}"

    idle_args = ["-payload", '{"type":"HEARTBEAT"}', "-reply=false", "-expect-first", "OPEN"]

    async def hello(self, ws, role, pid):
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if m.get("type") != "OPEN":
            raise RuntimeError(f"peerjs: {pid} not accepted: {m}")

    def offer(self, caller, bot, sdp, seq):
        return json.dumps({"type": "OFFER", "dst": bot, "payload": {
            "sdp": {"type": "offer", "sdp": sdp}, "type": "media", "connectionId": f"mc_{seq}"}})

    def incoming(self, m):  # at the bot: -> (sdp, context for the answer) or None
        if m.get("type") != "OFFER":
            return None
        p = m["payload"]
        return p["sdp"]["sdp"], (m["src"], p.get("connectionId"))

    def answer(self, bot, ctx, sdp):
        src, cid = ctx
        return json.dumps({"type": "ANSWER", "dst": src, "payload": {
            "sdp": {"type": "answer", "sdp": sdp}, "type": "media", "connectionId": cid}})

    def answered(self, m):  # at the caller: -> (sdp, context) or None
        if m.get("type") != "ANSWER":
            return None
        return m["payload"]["sdp"]["sdp"], None

    async def finish(self, caller_ws, bot_ws, ctx):  # after each timed round trip
        pass


class BotCall:
    """BotCall's wire contract (docs/protocol.md; checked against botcalld): GET /v1/ws;
    hello/welcome; call{to,sdp_offer} -> caller ringing{call_id,to} + bot
    incoming{call_id,from,sdp_offer,attestation,hv}; bot answer{call_id,sdp_answer} -> caller
    answer{call_id,sdp_answer}; hangup{call_id,reason} after each round trip (untimed: a bot
    takes max_calls = 1 call at a time). Human check must be `none`; run botcalld with
    --ws-rate 0 (the default 20 messages/s per socket throttles the callers).
    Needs --adapter-opt bots=FILE, one "AGENT_ID TOKEN" per line (BotAuth JWT for a key in
    the daemon's keys file; the hello registers the agent), at least --pairs lines. Server
    pings are answered by the websockets library.
    Changed from the sketch in ../shared/bench/relay_latency.py: the daemon refuses a `call`
    whose sdp_offer has no `a=fingerprint:` line (it goes into the attestation's `fp`), so
    offer() adds one; the bot's answer SDP keeps the offer's sequence number as before."""
    FINGERPRINT = ("a=fingerprint:sha-256 " + ":".join(["AB", "CD", "EF", "01"] * 8) + "\r\n")
    name = "botcall"
    heartbeat = None
    idle_args = []  # bots need tokens: hold idle bots with a wsload that can send hello

    def __init__(self, opts):
        if "bots" not in opts:
            raise SystemExit("botcall adapter: --adapter-opt bots=FILE (AGENT_ID TOKEN per line)")
        self.bots = [ln.split() for ln in open(opts["bots"]) if ln.strip()]
        self.calls = {}

    def peer_id(self, role, i):
        return self.bots[i][0] if role == "bot" else f"caller-{i}"

    def url(self, base, role, pid):
        return f"{base}/v1/ws"

    def idle_url(self, base):
        return f"{base}/v1/ws"

    async def hello(self, ws, role, pid):
        if role == "bot":
            tok = next(t for a, t in self.bots if a == pid)
            await ws.send(json.dumps({"type": "hello", "role": "bot", "token": tok}))
            want = "welcome"
        else:
            await ws.send(json.dumps({"type": "hello", "role": "caller"}))
            want = None  # answered with ICE servers (and a challenge if a check is required)
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if (want and m.get("type") != want) or m.get("type") == "error" or m.get("challenge"):
            raise RuntimeError(f"botcall hello ({role}): {m}")

    def offer(self, caller, bot, sdp, seq):
        sdp = sdp.replace("a=setup:", self.FINGERPRINT + "a=setup:", 1)
        return json.dumps({"type": "call", "to": bot, "sdp_offer": sdp})

    def incoming(self, m):
        if m.get("type") != "incoming":
            return None
        return m["sdp_offer"], m["call_id"]

    def answer(self, bot, ctx, sdp):
        return json.dumps({"type": "answer", "call_id": ctx, "sdp_answer": sdp})

    def answered(self, m):
        if m.get("type") != "answer":
            return None
        return m["sdp_answer"], m.get("call_id")

    async def finish(self, caller_ws, bot_ws, ctx):
        if ctx:  # end the call so the next round trip on this pair is not "busy"
            await caller_ws.send(json.dumps({"type": "hangup", "call_id": ctx, "reason": "bench"}))


ADAPTERS = {a.name: a for a in (PeerJS, BotCall)}


# ----------------------------------------------------------------------------- helpers
SEQ_RE = re.compile(r"o=- (\d+) ")


def make_sdp(seq, kind, size):
    head = (f"v=0\r\no=- {seq} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
            f"a=setup:{'actpass' if kind == 'offer' else 'active'}\r\na=rtpmap:111 opus/48000/2\r\n")
    pad = []
    n = len(head)
    while n < size:
        ln = "a=x-pad:" + "x" * max(0, min(64, size - n - 10)) + "\r\n"
        pad.append(ln)
        n += len(ln)
    return head + "".join(pad)


def seq_of(sdp):
    m = SEQ_RE.search(sdp)
    return int(m.group(1)) if m else -1


def cpu_ns(pid):
    """CPU time of all threads of pid, ns (schedstat: first field = time on CPU)."""
    tot = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    tot += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return tot


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(round((len(sorted_vals) - 1) * p)))]


def check_loopback(url):
    h = urlparse(url).hostname or ""
    try:
        ok = h == "localhost" or socket.inet_aton(h)[0] == 127
    except OSError:
        ok = False
    if not ok:
        sys.exit(f"refusing non-loopback URL {url}")


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def die_with_parent():
    """preexec_fn: the child gets SIGTERM if this script dies (kept across exec)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop(proc, grace=10):
    """End a process we started, by its PID: SIGTERM, then SIGKILL after grace s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ----------------------------------------------------------------------------- the run
class Peer:
    def __init__(self, ws, pid):
        self.ws, self.pid = ws, pid
        self.waiting = {}  # seq -> future (caller side)


async def heartbeat_loop(ws, text, every):
    try:
        while True:
            await asyncio.sleep(every * (0.5 + random.random() * 0.5))
            await ws.send(text)
    except Exception:
        pass


async def bot_loop(ad, peer, sdp_bytes, errors):
    try:
        async for raw in peer.ws:
            m = json.loads(raw)
            got = ad.incoming(m)
            if got is None:
                continue
            sdp, ctx = got
            await peer.ws.send(ad.answer(peer.pid, ctx, make_sdp(seq_of(sdp), "answer", sdp_bytes)))
    except Exception as e:  # connection closed etc.
        errors.append(f"bot {peer.pid}: {e!r}")


async def caller_loop(ad, peer, errors):
    try:
        async for raw in peer.ws:
            t1 = time.perf_counter_ns()
            m = json.loads(raw)
            got = ad.answered(m)
            if got is None:
                continue
            sdp, ctx = got
            fut = peer.waiting.pop(seq_of(sdp), None)
            if fut and not fut.done():
                fut.set_result((t1, ctx))
    except Exception as e:
        errors.append(f"caller {peer.pid}: {e!r}")


async def run(a, ad):
    base = a.url.rstrip("/")
    conn_kw = dict(compression="deflate" if a.deflate else None, ping_interval=None,
                   max_size=2 ** 20, open_timeout=10, close_timeout=2)
    if "proxy" in inspect.signature(connect.__init__).parameters:
        conn_kw["proxy"] = None  # websockets >= 15 would honour $http_proxy otherwise

    errors, tasks, pairs = [], [], []
    for i in range(a.pairs):
        pr = []
        for role in ("bot", "caller"):
            pid = ad.peer_id(role, i)
            ws = await connect(ad.url(base, role, pid), **conn_kw)
            await ad.hello(ws, role, pid)
            p = Peer(ws, pid)
            if ad.heartbeat:
                tasks.append(asyncio.create_task(heartbeat_loop(ws, *ad.heartbeat)))
            loop_fn = bot_loop(ad, p, a.sdp_bytes, errors) if role == "bot" else caller_loop(ad, p, errors)
            tasks.append(asyncio.create_task(loop_fn))
            pr.append(p)
        pairs.append(tuple(pr))  # (bot, caller)
    await asyncio.sleep(0.2)

    async def one(seq):
        bot, caller = pairs[seq % len(pairs)]
        fut = asyncio.get_running_loop().create_future()
        caller.waiting[seq] = fut
        msg = ad.offer(caller.pid, bot.pid, make_sdp(seq, "offer", a.sdp_bytes), seq)
        t0 = time.perf_counter_ns()
        await caller.ws.send(msg)
        try:
            t1, ctx = await asyncio.wait_for(fut, a.rt_timeout)
        except asyncio.TimeoutError:
            caller.waiting.pop(seq, None)
            return None
        await ad.finish(caller.ws, bot.ws, ctx)
        return t1 - t0

    for s in range(a.warmup):
        await one(s)

    spid = a.server_pid
    idle_rate = None
    if spid and a.idle_window > 0:  # server CPU rate with the idle load only
        c0, w0 = cpu_ns(spid), time.perf_counter_ns()
        await asyncio.sleep(a.idle_window)
        c1, w1 = cpu_ns(spid), time.perf_counter_ns()
        if c0 is not None and c1 is not None:
            idle_rate = (c1 - c0) / (w1 - w0)

    lats, timeouts = [], 0
    s0 = cpu_ns(spid) if spid else None
    p0, w0 = time.process_time_ns(), time.perf_counter_ns()
    for k in range(a.n):
        d = await one(a.warmup + k)
        if d is None:
            timeouts += 1
            if timeouts > max(10, a.n // 100):
                break
        else:
            lats.append(d)
        if a.gap_us:
            await asyncio.sleep(a.gap_us / 1e6)
    p1, w1 = time.process_time_ns(), time.perf_counter_ns()
    s1 = cpu_ns(spid) if spid else None

    for t in tasks:
        t.cancel()
    for bot, caller in pairs:
        for p in (bot, caller):
            try:
                await p.ws.close()
            except Exception:
                pass

    lats.sort()
    us = [x / 1000 for x in lats]
    res = {
        "adapter": ad.name, "url": base, "pairs": a.pairs, "sdp_bytes": a.sdp_bytes,
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "round_trips": len(us), "timeouts": timeouts, "wall_s": round((w1 - w0) / 1e9, 3),
        "p50_us": round(pct(us, 0.50), 1), "p90_us": round(pct(us, 0.90), 1),
        "p99_us": round(pct(us, 0.99), 1), "p999_us": round(pct(us, 0.999), 1),
        "max_us": round(us[-1], 1) if us else None,
        "mean_us": round(statistics.fmean(us), 1) if us else None,
        "client_cpu_us_per_rt": round((p1 - p0) / 1000 / max(1, len(us)), 1),
        "errors": errors[:5],
    }
    if s0 is not None and s1 is not None and us:
        res["server_cpu_us_per_rt"] = round((s1 - s0) / 1000 / len(us), 1)
        if idle_rate is not None:
            res["server_idle_cpu_pct"] = round(idle_rate * 100, 2)
            res["server_cpu_us_per_rt_net_of_idle"] = round(
                ((s1 - s0) - idle_rate * (w1 - w0)) / 1000 / len(us), 1)
    return res


def start_idle(a, ad, base):
    """Start wsload processes holding a.idle idle connections; returns (procs, summary)."""
    tmpl = a.idle_url or ad.idle_url(base)
    args = shlex.split(a.idle_args) if a.idle_args is not None else list(ad.idle_args)
    R = random.randint(20, 219)
    per = a.per_loadgen
    procs, left, j = [], a.idle, 0
    hold = a.max_run + 60
    while left > 0:
        n = min(per, left)
        left -= n
        errf = open(f"/tmp/relay_latency.wsload.{os.getpid()}.{j}.err", "w")
        cmd = [a.wsload, "-url", tmpl, "-n", str(n), "-interval", a.idle_interval,
               "-hold", f"{hold}s", "-max-run", f"{hold + 120}s", "-src", f"127.{R}.{j}.2",
               "-dial-rate", str(max(1, a.dial_rate // max(1, (a.idle + per - 1) // per))),
               "-id-offset", str(j * per)] + args
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True,
                                      preexec_fn=die_with_parent))
        j += 1
    ready = []
    deadline = time.time() + a.idle / max(1, a.dial_rate) + 120
    for p in procs:
        line = ""
        while not line.startswith("READY"):
            if time.time() > deadline or p.poll() is not None:
                raise RuntimeError(f"wsload not ready: {line!r}")
            line = p.stdout.readline()
        ready.append(line.strip())
    conn = sum(int(re.search(r"connected=(\d+)", r).group(1)) for r in ready)
    fail = sum(int(re.search(r"failed=(\d+)", r).group(1)) for r in ready)
    return procs, {"idle_connected": conn, "idle_failed": fail, "wsload_ready": ready}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--adapter", default="peerjs", choices=sorted(ADAPTERS))
    ap.add_argument("--adapter-opt", action="append", default=[], metavar="K=V")
    ap.add_argument("--url", help="server base URL, e.g. ws://127.0.0.1:9000 (default from --port)")
    ap.add_argument("--port", type=int, default=18300)
    ap.add_argument("--server-cmd", help="start this server ({PORT} replaced) and stop it at the end")
    ap.add_argument("--server-pid", type=int, help="PID of an already running server (CPU per round trip)")
    ap.add_argument("--n", type=int, default=2000, help="timed round trips")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=4, help="caller/bot pairs, used round robin")
    ap.add_argument("--sdp-bytes", type=int, default=2000, help="size of each SDP (offer and answer)")
    ap.add_argument("--gap-us", type=int, default=0, help="pause between round trips")
    ap.add_argument("--rt-timeout", type=float, default=5.0)
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate like a browser")
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (pip install uvloop): less client overhead")
    ap.add_argument("--idle", type=int, default=0, help="idle connections held by wsload meanwhile")
    ap.add_argument("--idle-url", help="wsload URL template ({id}); default from the adapter")
    ap.add_argument("--idle-args", help="wsload extra flags (shell words); default from the adapter")
    ap.add_argument("--idle-interval", default="5s", help="wsload heartbeat interval")
    ap.add_argument("--idle-settle", type=float, default=10, help="seconds after the idle load is up")
    ap.add_argument("--idle-window", type=float, default=5,
                    help="seconds of server CPU sampling before the timed phase (idle rate)")
    ap.add_argument("--per-loadgen", type=int, default=15000)
    ap.add_argument("--dial-rate", type=int, default=4000)
    ap.add_argument("--wsload", default=os.path.join(os.environ.get("BIN", "/tmp/botcall-peers"), "wsload"))
    ap.add_argument("--max-run", type=float, default=600, help="hard cap on the whole run, seconds")
    ap.add_argument("--json", help="also write the result as JSON here")
    a = ap.parse_args()

    opts = dict(kv.split("=", 1) for kv in a.adapter_opt)
    ad = ADAPTERS[a.adapter](opts)
    a.url = a.url or f"ws://127.0.0.1:{a.port}"
    check_loopback(a.url)
    port = urlparse(a.url).port or 80

    server = idle = None
    summary = {}
    t_start = time.time()

    def on_alarm(*_):
        raise TimeoutError(f"--max-run {a.max_run}s exceeded")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(a.max_run))
    try:
        if a.server_cmd:
            log = open(f"/tmp/relay_latency.server.{os.getpid()}.log", "w")
            cmd = a.server_cmd.replace("{PORT}", str(port))
            server = subprocess.Popen(["bash", "-c", "exec " + cmd], stdout=log, stderr=subprocess.STDOUT,
                                      preexec_fn=die_with_parent)
            a.server_pid = server.pid
            if not wait_port(port):
                raise RuntimeError(f"server did not listen on {port}")
            time.sleep(1)
        if a.idle > 0:
            if not os.access(a.wsload, os.X_OK):
                raise SystemExit(f"no wsload at {a.wsload} (run bench/load/build.sh)")
            idle, summary = start_idle(a, ad, a.url.rstrip("/"))
            time.sleep(a.idle_settle)
        if a.uvloop:
            import uvloop
            res = uvloop.run(run(a, ad))
        else:
            res = asyncio.run(run(a, ad))
        res.update(summary)
        if a.server_pid:
            try:
                with open(f"/proc/{a.server_pid}/status") as f:
                    res["server_rss_kb"] = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            except OSError:
                pass
    finally:
        signal.alarm(0)
        for p in idle or []:
            p.send_signal(signal.SIGTERM)
        for p in idle or []:
            try:
                out, _ = p.communicate(timeout=30)
                done = [ln for ln in out.splitlines() if ln.startswith("DONE")]
                if done:
                    summary.setdefault("wsload_done", []).append(done[0])
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        stop(server)
    res["wsload_done"] = summary.get("wsload_done", [])
    res["run_s"] = round(time.time() - t_start, 1)
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
