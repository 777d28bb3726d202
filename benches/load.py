#!/usr/bin/env python3
"""benches/load.py — BotCall load benchmark, botcalld vs the reference peers in the same run.

Run it as `benches/run [--quick]` from the project root (see benches/README.md). Phases:

  http   wrk -t1 -c64 on GET /lookup/{id} and POST /register (HS256 and ES256, cached token
         vs a fresh token per request) against botcalld, and on the same routes of go-seed
         (with its HS256 JWT, and without auth): req/s, p50/p99, server CPU µs per request
         (/proc/PID/stat utime+stime deltas; server pinned to CPU 0, wrk to CPU 1).
  mem    RSS delta for 100,000 registered agents (default --max-agents), bytes per entry;
         go-seed the same (its sync.Map).
  ws     N idle authenticated bot WebSockets (app heartbeat every 25 s, like go-seed's
         measurement; botcalld also pings every 30 s): RSS per connection and server CPU% over
         a window, botcalld vs go-seed at 10k; full mode adds 19,900 in one botcalld process
         and 50,000 over 3 processes (ulimit -Hn is 20000 per process).
  relay  caller→daemon→bot→daemon→caller round trips while 10k idle bots are connected:
         relay_latency.py (Python client, botcall adapter) and botload's Go client; PeerJS
         (the other reference, with 10k idle wsload sockets) when installed, in full mode;
         and the floor: the Go client against `botload floor`, a server doing only the socket
         operations botcalld does per round trip (the kernel's share, no user-space work).

Everything listens on / dials 127.0.0.0/8 only; every process started is tracked by PID,
gets PR_SET_PDEATHSIG, and is ended (SIGTERM, then SIGKILL) at the end of its phase, on
error, or on Ctrl-C. The whole run is bounded by --max-run.
"""
import argparse
import atexit
import ctypes
import datetime
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SHARED", os.path.normpath(os.path.join(ROOT, "..", "shared")))
BIN = os.environ.get("BIN", "/tmp/botcall-peers")
# BOTCALLD: another build to measure (A/B runs against a copy of the "before" binary).
DAEMON = os.environ.get("BOTCALLD", os.path.join(ROOT, "target", "release", "botcalld"))
BOTLOAD = os.path.join(BIN, "botload")
GOSEED = os.path.join(BIN, "go-seed")
WSLOAD = os.path.join(BIN, "wsload")
VENV_PY = os.path.join(BIN, "venv", "bin", "python")
PEERJS_DIR = os.environ.get("PEERJS_DIR", os.path.join(BIN, "peerjs"))
HZ = os.sysconf("SC_CLK_TCK")
GOSEED_SECRET = "bench-go-seed-secret"
HELLO = '{"type":"hello","role":"bot"}'

PROCS = []          # every Popen we started, ended by PID
TMP = None


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- processes
def _deathsig():
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(cmd, name, stdout=None):
    """Starts cmd (a list), logs to TMP/name.log unless stdout is given; tracked by PID."""
    errf = open(os.path.join(TMP, name + ".log"), "w")
    p = subprocess.Popen(cmd, stdout=stdout or errf, stderr=errf, stdin=subprocess.DEVNULL,
                         preexec_fn=_deathsig, text=True)
    p.bench_name = name
    PROCS.append(p)
    return p


def stop(p, grace=15):
    if p is None:
        return
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        except ProcessLookupError:
            pass
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in list(PROCS):
        stop(p, grace=10)


def wait_port(port, timeout=20, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.bench_name} exited with {proc.returncode}: " + tail(proc.bench_name))
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def tail(name, n=5):
    try:
        with open(os.path.join(TMP, name + ".log")) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def free_port(base):
    """First port >= base where 127.0.0.1 can bind (and the next few for multi-process runs)."""
    for port in range(base, base + 2000, 10):
        ok = True
        for k in range(4):
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port + k))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise RuntimeError("no free port")


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        return 0


def hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    except (OSError, AttributeError):
        return 0


def ticks2(pid):
    """(utime, stime) clock ticks of pid (fields 14, 15 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0, 0


def ticks(pid):
    return sum(ticks2(pid))


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def http_get(url, timeout=5):
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=timeout) as r:
        return r.read().decode()


def metric(text, name):
    """Sum of a Prometheus metric's samples (all label sets)."""
    tot = 0.0
    for ln in text.splitlines():
        if ln.startswith(name) and (ln[len(name)] in " {"):
            tot += float(ln.rsplit(" ", 1)[1])
    return tot


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ----------------------------------------------------------------------------- build
def build(a):
    out = {}
    if not a.no_build:
        log("cargo build --release")
        t0 = time.time()
        r = subprocess.run(["cargo", "build", "--release", "--bin", "botcalld"], cwd=ROOT,
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("cargo build --release failed:\n" + r.stderr[-3000:])
        out["cargo_build_s"] = round(time.time() - t0, 1)
    if not os.access(DAEMON, os.X_OK):
        sys.exit(f"no {DAEMON}")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="",
               GOCACHE=os.environ.get("GOCACHE", "/tmp/go-build-cache"), BIN=BIN)
    if not os.access(GOSEED, os.X_OK):
        log("building go-seed")
        subprocess.run([os.path.join(SHARED, "peers", "go-seed", "build.sh")], env=env, check=True,
                       capture_output=True)
    srcs = [os.path.join(HERE, "botload", f) for f in os.listdir(os.path.join(HERE, "botload")) if f.endswith(".go")]
    if not os.access(BOTLOAD, os.X_OK) or max(map(os.path.getmtime, srcs)) > os.path.getmtime(BOTLOAD):
        log("building botload")
        os.makedirs(BIN, exist_ok=True)
        subprocess.run(["go", "build", "-o", BOTLOAD, "."], cwd=os.path.join(HERE, "botload"),
                       env=env, check=True)
    if a.relay and not os.access(VENV_PY, os.X_OK):
        log("python venv with websockets (PyPI) for relay_latency.py")
        subprocess.run([sys.executable, "-m", "venv", os.path.join(BIN, "venv")], check=True)
        subprocess.run([VENV_PY, "-m", "pip", "install", "-q", "websockets==17.4"], check=True)
    if a.peerjs and not os.access(WSLOAD, os.X_OK):
        subprocess.run([os.path.join(SHARED, "bench", "load", "build.sh")], env=env, check=True,
                       capture_output=True)
    out["botcalld_bytes"] = os.path.getsize(DAEMON)
    out["go_seed_bytes"] = os.path.getsize(GOSEED)
    return out


# The load phases measure work, not refusals: every client here is one
# loopback address, so the per-client limits of the defaults are lifted
# (the attack phase sets its own).
UNLIMITED = ["--rate-ip", "0", "--rate-agent", "0", "--verify-rate", "0",
             "--rate-calls-ip", "0", "--rate-calls-bot", "0", "--open-ids-per-hour", "0",
             "--max-connections-per-ip", "1000000"]


def botcalld_cmd(port, keys, state, extra=(), defaults=False):
    limits = [] if defaults else UNLIMITED
    return [DAEMON, "--listen", f"127.0.0.1:{port}", "--stun-listen", "off", "--keys", keys,
            "--state-dir", state, *limits, "--log-level", "warn", *extra]


def start_botcalld(name, port, keys, extra=(), cpus=None, defaults=False):
    state = os.path.join(TMP, "state")
    os.makedirs(state, exist_ok=True)
    cmd = botcalld_cmd(port, keys, state, extra, defaults)
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    p = start(cmd, name)
    wait_port(port, proc=p)
    return p


def start_goseed(name, port, secret=True, cpus=None):
    cmd = [GOSEED, "-addr", f"127.0.0.1:{port}", "-rate", "0"]
    if secret:
        cmd += ["-jwt-secret", GOSEED_SECRET]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    p = start(cmd, name)
    wait_port(port, proc=p)
    return p


def goseed_jwt(ttl=86400):
    """HS256 JWT for go-seed (it checks only the signature and exp/nbf/iat)."""
    import base64
    import hashlib
    import hmac
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    h = enc(b'{"alg":"HS256","typ":"JWT"}') + "." + enc(json.dumps({"sub": "bench", "iat": now, "exp": now + ttl}).encode())
    return h + "." + enc(hmac.new(GOSEED_SECRET.encode(), h.encode(), hashlib.sha256).digest())


def mint(keys_dir, out, alg, prefix, n, start_at=0, ids=0):
    cmd = [BOTLOAD, "mint", "-dir", keys_dir, "-alg", alg, "-prefix", prefix, "-n", str(n),
           "-start", str(start_at), "-out", out]
    if ids:
        cmd += ["-ids", str(ids)]
    run(cmd)
    return out


# ----------------------------------------------------------------------------- http
LAT_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            r[f"p{p}_ms"] = float(m.group(1)) * LAT_UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    if m:
        r["socket_errors"] = m.group(1).strip()
    return r


def wrk(url, lua, env, dur, pin, conns=64):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{dur}s", "--latency", "-s", lua, url]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    p = subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True,
                       timeout=dur + 60)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed: {p.stderr[-500:]}")
    return p.stdout


def phase_http(a, keys_dir, res):
    keys = os.path.join(keys_dir, "keys.json")
    pin = not a.no_pin
    srv_cpu = "0" if pin else None
    wk = os.path.join(HERE, "wrk")
    swk = os.path.join(SHARED, "bench", "load", "wrk")
    pb = free_port(18600)
    bp = start_botcalld("http.botcalld", pb, keys, cpus=srv_cpu)
    pg = free_port(pb + 10)
    gp = start_goseed("http.go-seed", pg, secret=True, cpus=srv_cpu)
    pn = free_port(pg + 10)
    gn = start_goseed("http.go-seed-noauth", pn, secret=False, cpus=srv_cpu)
    gtok = goseed_jwt()
    ub, ug, un = (f"http://127.0.0.1:{p}" for p in (pb, pg, pn))

    # seed: 1000 agents each (botcalld: bench-seed-k with its own tokens; go-seed: agent-0-k)
    seed = mint(keys_dir, os.path.join(TMP, "seed.tok"), "hs", "bench-seed-", 1000)
    run([BOTLOAD, "register", "-url", ub, "-dir", keys_dir, "-prefix", "bench-seed-", "-n", "1000"])
    for u in (ug, un):
        env = {"ID_SPACE": "1000", "TOKEN": gtok if u == ug else ""}
        subprocess.run(["wrk", "-t1", "-c8", "-d1s", "-s", os.path.join(swk, "register.lua"), u],
                       env=dict(os.environ, **env), capture_output=True, timeout=60)

    # ES256 pools sized for ring (~15k fresh verifications/s): no token comes round twice in a run.
    fresh_n = {"hs": 30000, "es": 40000 if a.quick else 80000}
    cached = {alg: mint(keys_dir, os.path.join(TMP, f"{alg}.cached.tok"), alg, f"bench-{alg}c-" if alg == "hs" else "bench-es-c-", 1000)
              for alg in ("hs", "es")}
    scen = [
        # key, server label, url, lua, env-fn(rep), route label
        ("b_lookup", "botcalld", ub, os.path.join(wk, "botcall_lookup.lua"), lambda r: {"IDS": seed}),
        ("b_reg_hs_fresh", "botcalld", ub, os.path.join(wk, "botcall_register.lua"),
         lambda r: {"TOKENS": mint(keys_dir, os.path.join(TMP, f"hs.fresh.{r}.tok"), "hs", "bench-hsf-",
                                   fresh_n["hs"], start_at=r * fresh_n["hs"], ids=5000)}),
        ("b_reg_hs_cached", "botcalld", ub, os.path.join(wk, "botcall_register.lua"), lambda r: {"TOKENS": cached["hs"]}),
        ("b_reg_es_fresh", "botcalld", ub, os.path.join(wk, "botcall_register.lua"),
         lambda r: {"TOKENS": mint(keys_dir, os.path.join(TMP, f"es.fresh.{r}.tok"), "es", "bench-es-f-",
                                   fresh_n["es"], start_at=r * fresh_n["es"], ids=5000)}),
        ("b_reg_es_cached", "botcalld", ub, os.path.join(wk, "botcall_register.lua"), lambda r: {"TOKENS": cached["es"]}),
        ("g_lookup", "go-seed", ug, os.path.join(swk, "lookup.lua"), lambda r: {"TOKEN": gtok}),
        ("g_reg", "go-seed", ug, os.path.join(swk, "register.lua"), lambda r: {"TOKEN": gtok}),
        ("n_lookup", "go-seed-noauth", un, os.path.join(swk, "lookup.lua"), lambda r: {"TOKEN": ""}),
        ("n_reg", "go-seed-noauth", un, os.path.join(swk, "register.lua"), lambda r: {"TOKEN": ""}),
    ]
    pids = {"botcalld": bp.pid, "go-seed": gp.pid, "go-seed-noauth": gn.pid}
    raw = {k: [] for k, *_ in scen}
    for rep in range(a.reps):
        for key, srv, url, lua, envf in scen:
            env = envf(rep)
            pid = pids[srv]
            if key.endswith("_cached"):
                # the fresh-token runs evicted these from the FIFO cache: warm it again (untimed)
                wrk(ub, lua, env, 1, pin, conns=8)
            m0 = http_get(ub + "/metrics") if srv == "botcalld" else None
            (u0, k0) = ticks2(pid)
            out = wrk(url, lua, env, a.http_secs, pin)
            (u1, k1) = ticks2(pid)
            t0, t1 = u0 + k0, u1 + k1
            r = parse_wrk(out)
            r["server_cpu_s"] = (t1 - t0) / HZ
            if r.get("requests"):
                r["cpu_us_per_req"] = (t1 - t0) / HZ * 1e6 / r["requests"]
                r["user_us_per_req"] = (u1 - u0) / HZ * 1e6 / r["requests"]
                r["sys_us_per_req"] = (k1 - k0) / HZ * 1e6 / r["requests"]
            if m0 is not None:
                m1 = http_get(ub + "/metrics")
                hits = metric(m1, "botcall_token_cache_hits_total") - metric(m0, "botcall_token_cache_hits_total")
                miss = metric(m1, "botcall_token_cache_misses_total") - metric(m0, "botcall_token_cache_misses_total")
                if hits + miss > 0:
                    r["token_cache_hit_pct"] = round(100 * hits / (hits + miss), 1)
            raw[key].append(r)
            log(f"http {key} rep {rep}: {r.get('rps', 0):.0f} req/s p50 {r.get('p50_ms')} ms "
                f"p99 {r.get('p99_ms')} ms cpu {r.get('cpu_us_per_req', 0):.1f} us/req non2xx {r['non2xx']}"
                + (f" cache_hit {r.get('token_cache_hit_pct')}%" if 'token_cache_hit_pct' in r else ""))
    summ = {}
    for key, runs in raw.items():
        summ[key] = {f: median([r.get(f) for r in runs]) for f in
                     ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "user_us_per_req", "sys_us_per_req",
                      "token_cache_hit_pct")}
        summ[key]["non2xx"] = sum(r.get("non2xx", 0) for r in runs)
        summ[key]["requests"] = sum(r.get("requests", 0) for r in runs)
    res["http"] = {"summary": summ, "runs": raw, "pinned": pin, "secs": a.http_secs, "reps": a.reps,
                   "botcalld_rss_kb_after": rss_kb(bp.pid)}
    for p in (bp, gp, gn):
        stop(p)


# ----------------------------------------------------------------------------- mem
def phase_mem(a, keys_dir, res):
    keys = os.path.join(keys_dir, "keys.json")
    n = 100000
    port = free_port(18700)
    bp = start_botcalld("mem.botcalld", port, keys)
    time.sleep(1)
    r0 = rss_kb(bp.pid)
    out = run([BOTLOAD, "register", "-url", f"http://127.0.0.1:{port}", "-dir", keys_dir,
               "-prefix", "bench-mem-", "-n", str(n), "-conc", "32"]).stdout.strip()
    time.sleep(1)
    r1 = rss_kb(bp.pid)
    agents = metric(http_get(f"http://127.0.0.1:{port}/metrics"), "botcall_agents_registered")
    stop(bp)
    b = {"n": n, "register": out, "rss_idle_kb": r0, "rss_after_kb": r1, "agents_gauge": agents,
         "bytes_per_entry": (r1 - r0) * 1024 / n}
    log(f"mem botcalld: {out}; rss {r0} -> {r1} KB = {b['bytes_per_entry']:.0f} B/entry")
    port = free_port(port + 10)
    gp = start_goseed("mem.go-seed", port, secret=False)
    time.sleep(1)
    g0 = rss_kb(gp.pid)
    out = run([BOTLOAD, "register", "-style", "goseed", "-url", f"http://127.0.0.1:{port}",
               "-prefix", "bench-mem-", "-n", str(n), "-conc", "32"]).stdout.strip()
    time.sleep(1)
    g1 = rss_kb(gp.pid)
    try:
        http_get(f"http://127.0.0.1:{port}/stats?gc=1", timeout=20)
    except OSError:
        pass
    time.sleep(1)
    g2 = rss_kb(gp.pid)
    stop(gp)
    g = {"n": n, "register": out, "rss_idle_kb": g0, "rss_after_kb": g1, "rss_after_gc_kb": g2,
         "bytes_per_entry": (g1 - g0) * 1024 / n, "bytes_per_entry_after_gc": (g2 - g0) * 1024 / n}
    log(f"mem go-seed: {out}; rss {g0} -> {g1} KB ({g2} after GC) = {g['bytes_per_entry']:.0f} B/entry")
    res["mem"] = {"botcalld": b, "go-seed": g}


# ----------------------------------------------------------------------------- ws idle
def read_lines_until(p, prefix, deadline):
    """Reads p.stdout lines until one starts with prefix (bounded)."""
    import select
    buf = ""
    while time.time() < deadline:
        if p.poll() is not None and not select.select([p.stdout], [], [], 0)[0]:
            raise RuntimeError(f"{p.bench_name} exited: {tail(p.bench_name)}")
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            line = p.stdout.readline()
            if line.startswith(prefix):
                return line.strip()
    raise RuntimeError(f"{p.bench_name}: no {prefix} line in time: {tail(p.bench_name)}")


def kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", line)}


def start_bots(kind, n, ports, keys_dir, per_loadgen, dial_rate, hold_s, tag, interval="25s", alg="hs"):
    """Load generators (botload ws) holding n connections spread over ports.
    botcalld bots get a fresh BotAuth token each: HS256 (alg "hs") or ES256 ("es")."""
    R = random.randint(20, 219)
    L = max(1, math.ceil(n / per_loadgen))
    left, procs = n, []
    for j in range(L):
        nj = min(per_loadgen, left)
        left -= nj
        if kind == "botcalld":
            urls = ",".join(f"ws://127.0.0.1:{p}/v1/ws" for p in ports)
            extra = ["-dir", keys_dir, "-hello", HELLO, "-expect-first", '"welcome"',
                     "-payload", '{"type":"ping"}', "-alg", alg,
                     "-id-prefix", "bench-es-ws-" if alg == "es" else "bench-ws-"]
        else:
            urls = ",".join(f"ws://127.0.0.1:{p}/ws?agent_id={{id}}" for p in ports)
            extra = ["-payload", "ping", "-id-prefix", "agent-", "-token", goseed_jwt()]
        cmd = [BOTLOAD, "ws", "-url", urls, "-n", str(nj), "-id-offset", str(j * per_loadgen),
               "-src", f"127.{R}.{j}.2", "-dial-rate", str(max(1, dial_rate // L)),
               "-interval", interval, "-hold", f"{hold_s}s", "-max-run", f"{hold_s + 120}s"] + extra
        procs.append(start(cmd, f"{tag}.load{j}", stdout=subprocess.PIPE))
    deadline = time.time() + n / max(1, dial_rate) + 90
    ready = [read_lines_until(p, "READY", deadline) for p in procs]
    return procs, ready


def stop_bots(procs):
    done = []
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            out, _ = p.communicate(timeout=60)
            done += [ln for ln in (out or "").splitlines() if ln.startswith("DONE")]
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        if p in PROCS:
            PROCS.remove(p)
    return done


def ws_idle(a, kind, n, nservers, keys_dir, settle, window, tag, daemon_args=()):
    keys = os.path.join(keys_dir, "keys.json")
    base = free_port(18800 + random.randint(0, 40) * 10)
    ports = [base + k for k in range(nservers)]
    servers = []
    try:
        for k, port in enumerate(ports):
            if kind == "botcalld":
                servers.append(start_botcalld(f"{tag}.srv{k}", port, keys, extra=["--max-connections", "20000", *daemon_args]))
            else:
                servers.append(start_goseed(f"{tag}.srv{k}", port, secret=True))
        time.sleep(1.5)
        rss0 = sum(rss_kb(p.pid) for p in servers)
        hold = settle + window + 300
        t0 = time.time()
        loads, ready = start_bots(kind, n, ports, keys_dir, a.per_loadgen, a.dial_rate, hold, tag)
        conn = sum(int(kv(r).get("connected", 0)) for r in ready)
        fail = sum(int(kv(r).get("failed", 0)) for r in ready)
        dial_s = time.time() - t0
        rss_up = sum(rss_kb(p.pid) for p in servers)
        time.sleep(settle)
        rss1 = sum(rss_kb(p.pid) for p in servers)
        samples = []
        s0 = sum(ticks(p.pid) for p in servers)
        l0 = sum(ticks(p.pid) for p in loads)
        w0 = time.time()
        if window > 0:
            while time.time() - w0 < window:
                time.sleep(min(2, max(0.01, window - (time.time() - w0))))
                samples.append(sum(rss_kb(p.pid) for p in servers))
        s1 = sum(ticks(p.pid) for p in servers)
        l1 = sum(ticks(p.pid) for p in loads)
        w = time.time() - w0
        hwm = sum(hwm_kb(p.pid) for p in servers)
        extra = {}
        if kind == "botcalld":
            try:
                mt = http_get(f"http://127.0.0.1:{ports[0]}/metrics")
                extra = {"ws_bots_open_srv0": metric(mt, 'botcall_ws_open{role="bot"}'),
                         "ws_messages_in_srv0": metric(mt, "botcall_ws_messages_in_total"),
                         "ws_heartbeat_timeouts_srv0": metric(mt, "botcall_ws_heartbeat_timeouts_total")}
            except OSError:
                pass
        else:
            try:
                extra = {"stats_srv0": json.loads(http_get(f"http://127.0.0.1:{ports[0]}/stats"))}
            except (OSError, ValueError):
                pass
        done = stop_bots(loads)
    finally:
        for p in servers:
            stop(p, grace=20)
    med = median(samples) if samples else rss1
    r = {"kind": kind, "n": n, "servers": nservers, "loadgens": len(ready), "connected": conn, "failed": fail,
         "dial_s": round(dial_s, 1), "rss_idle_kb": rss0, "rss_connected_kb": rss_up, "rss_after_settle_kb": rss1,
         "rss_window_median_kb": med, "rss_window_min_kb": min(samples) if samples else None,
         "rss_window_max_kb": max(samples) if samples else None, "hwm_kb": hwm,
         "kb_per_conn": (med - rss0) / conn if conn else None,
         "kb_per_conn_after_settle": (rss1 - rss0) / conn if conn else None,
         "window_s": round(w, 1), "settle_s": settle,
         "server_cpu_pct": (s1 - s0) / HZ / w * 100 if window > 0 else None,
         "loadgen_cpu_pct": (l1 - l0) / HZ / w * 100 if window > 0 else None,
         "ready": ready, "done": done, **extra}
    log(f"ws {tag}: {kind} n={n} connected={conn} failed={fail} rss {rss0}->{med} KB "
        f"= {r['kb_per_conn'] or 0:.2f} KB/conn, cpu {r['server_cpu_pct'] or 0:.2f}% over {w:.0f}s")
    return r


def phase_ws(a, keys_dir, res):
    out = res.setdefault("ws", {})
    settle, window = (5, 30) if a.quick else (15, 90)
    out["b10k"] = ws_idle(a, "botcalld", 10000, 1, keys_dir, settle, window, "ws.b10k")
    out["g10k"] = ws_idle(a, "go-seed", 10000, 1, keys_dir, settle, window, "ws.g10k")
    if not a.quick:
        # attribution: the same 10k bots with no server pings in the window (app heartbeats only)
        out["b10k_noping"] = ws_idle(a, "botcalld", 10000, 1, keys_dir, 5, 30, "ws.b10k_noping",
                                     daemon_args=["--heartbeat-interval", "600"])
        out["b19k"] = ws_idle(a, "botcalld", 19900, 1, keys_dir, 10, 10, "ws.b19k")
        out["b50k"] = ws_idle(a, "botcalld", 50000, 3, keys_dir, 10, 10, "ws.b50k")
        if not a.no_go50k:
            out["g50k"] = ws_idle(a, "go-seed", 50000, 3, keys_dir, 10, 10, "ws.g50k")


# ----------------------------------------------------------------------------- hello
def phase_hello(a, keys_dir, res):
    """Server CPU per bot connection (TCP accept, upgrade, a fresh BotAuth token, hello, welcome),
    HS256 and ES256 tokens, each in a fresh daemon: the ES256 - HS256 difference is the signature."""
    keys = os.path.join(keys_dir, "keys.json")
    out = res.setdefault("hello", {})
    n = 4000 if a.quick else 10000
    reps = 1 if a.quick else 3
    for alg in ("hs", "es"):
        runs = []
        for rep in range(reps):
            port = free_port(18700 + rep * 10)
            tag = f"hello.{alg}{rep}"
            srv = start_botcalld(f"{tag}.srv", port, keys, extra=["--max-connections", "20000"])
            try:
                wait_port(port, proc=srv)
                time.sleep(0.5)
                u0, k0 = ticks2(srv.pid)
                t0 = time.time()
                loads, ready = start_bots("botcalld", n, [port], keys_dir, a.per_loadgen, a.dial_rate,
                                          30, tag, interval="0", alg=alg)
                u1, k1 = ticks2(srv.pid)
                dial_s = time.time() - t0
                conn = sum(int(kv(r).get("connected", 0)) for r in ready)
                fail = sum(int(kv(r).get("failed", 0)) for r in ready)
                stop_bots(loads)
            finally:
                stop(srv, grace=20)
            r = {"n": n, "connected": conn, "failed": fail, "dial_s": round(dial_s, 2),
                 "cpu_us_per_hello": ((u1 - u0) + (k1 - k0)) / HZ * 1e6 / conn if conn else None,
                 "user_us_per_hello": (u1 - u0) / HZ * 1e6 / conn if conn else None}
            log(f"hello {alg}: {r}")
            runs.append(r)
        out[alg] = runs


# ----------------------------------------------------------------------------- relay
def phase_relay(a, keys_dir, res):
    keys = os.path.join(keys_dir, "keys.json")
    out = res.setdefault("relay", {})
    n, warm = (1000, 200) if a.quick else (2000, 500)
    reps = 1 if a.quick else 3
    port = free_port(18900)
    bp = start_botcalld("relay.botcalld", port, keys, extra=["--max-connections", "20000", "--ws-rate", "0"])
    # The floor (`botload floor`): the same Go client against a server doing only the socket
    # operations botcalld does per round trip (what the kernel alone costs), same run, interleaved.
    fport = free_port(18950)
    fp = start([BOTLOAD, "floor", "-addr", f"127.0.0.1:{fport}", "-max-run", "1200s"], "relay.floor")
    loads = []
    try:
        wait_port(fport, proc=fp)
        loads, ready = start_bots("botcalld", a.relay_idle, [port], keys_dir, a.per_loadgen, a.dial_rate,
                                  900, "relay")
        out["idle_ready"] = ready
        time.sleep(5)
        bots = mint(keys_dir, os.path.join(TMP, "relay.bots"), "hs", "bench-rl-b-", 8)
        py, go, floor = [], [], []
        for rep in range(reps):
            jf = os.path.join(TMP, f"relay.py.{rep}.json")
            cmd = [VENV_PY, os.path.join(HERE, "relay_latency.py"), "--adapter", "botcall",
                   "--adapter-opt", f"bots={bots}", "--url", f"ws://127.0.0.1:{port}",
                   "--server-pid", str(bp.pid), "--n", str(n), "--warmup", str(warm), "--pairs", "4",
                   "--idle-window", "5", "--max-run", "300", "--json", jf]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=360)
            if r.returncode != 0:
                raise RuntimeError("relay_latency.py: " + r.stderr[-800:])
            py.append(json.load(open(jf)))
            g = run([BOTLOAD, "relay", "-url", f"ws://127.0.0.1:{port}/v1/ws", "-bots", bots,
                     "-pairs", "4", "-n", str(n), "-warmup", str(warm), "-server-pid", str(bp.pid)],
                    timeout=240).stdout.strip().splitlines()[-1]
            go.append(json.loads(g))
            fl = run([BOTLOAD, "relay", "-url", f"ws://127.0.0.1:{fport}/v1/ws", "-bots", bots,
                      "-pairs", "4", "-n", str(n), "-warmup", str(warm), "-server-pid", str(fp.pid)],
                     timeout=240).stdout.strip().splitlines()[-1]
            floor.append(json.loads(fl))
            log(f"relay rep {rep}: floor (Go client) p50 {floor[-1]['p50_us']:.0f} us "
                f"cpu {floor[-1].get('server_cpu_us_per_rt', 0):.1f} us/rt")
            log(f"relay rep {rep}: python p50 {py[-1]['p50_us']} p99 {py[-1]['p99_us']} max {py[-1]['max_us']} us "
                f"cpu {py[-1].get('server_cpu_us_per_rt_net_of_idle')} us/rt; go p50 {go[-1]['p50_us']:.0f} "
                f"p99 {go[-1]['p99_us']:.0f} max {go[-1]['max_us']:.0f} us cpu {go[-1].get('server_cpu_us_per_rt', 0):.0f} us/rt")
        out["botcalld_python"] = py
        out["botcalld_go"] = go
        out["floor_go"] = floor
        mt = http_get(f"http://127.0.0.1:{port}/metrics")
        out["bots_online_during"] = metric(mt, 'botcall_ws_open{role="bot"}')
        out["idle_done"] = stop_bots(loads)
    finally:
        stop_bots(loads)
        stop(bp)
        stop(fp)
    if a.peerjs:
        cli = os.path.join(PEERJS_DIR, "node_modules", "peer", "dist", "bin", "peerjs.js")
        if not os.path.exists(cli):
            out["peerjs_skipped"] = f"not installed ({SHARED}/peers/peerjs/install.sh)"
            return
        pj = []
        for rep in range(1 if a.quick else 2):
            jf = os.path.join(TMP, f"relay.peerjs.{rep}.json")
            pport = free_port(19000)
            cmd = [VENV_PY, os.path.join(HERE, "relay_latency.py"), "--adapter", "peerjs",
                   "--port", str(pport), "--server-cmd", os.path.join(SHARED, "peers", "peerjs", "run.sh") + " {PORT}",
                   "--idle", str(a.relay_idle), "--n", str(n), "--warmup", str(warm), "--idle-window", "5",
                   "--wsload", WSLOAD, "--max-run", "400", "--json", jf]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=480, env=dict(os.environ, BIN=BIN))
            if r.returncode != 0:
                out["peerjs_error"] = r.stderr[-800:]
                break
            pj.append(json.load(open(jf)))
            log(f"relay peerjs rep {rep}: p50 {pj[-1]['p50_us']} p99 {pj[-1]['p99_us']} max {pj[-1]['max_us']} us "
                f"cpu {pj[-1].get('server_cpu_us_per_rt_net_of_idle')} us/rt")
        out["peerjs_python"] = pj



# ----------------------------------------------------------------------------- under attack (issue 12)
# Each hostile client of the adversarial review (tests/hostile.rs asserts the bounds), one at a time,
# from its own loopback addresses, against a daemon with the default protections; meanwhile a paced
# legitimate lookup probe and a paced relay probe (inside the per-client limits, from their own
# addresses) measure what a real user sees. The first window is quiet: the reference column.
ATTACKS = [
    # name, label, botload attack flags, attacker source addresses
    ("ping", "1 ping flood (pings, never read)", ["-kind", "ping", "-k", "2"], 4),
    ("slots", "2 slots (8 addresses hold all they get)", ["-kind", "slots", "-k", "1"], 8),
    ("badsig", "3 bad-signature ES256 hellos", ["-kind", "badsig", "-k", "2"], 16),
    ("callspam", "4 call spam at one bot", ["-kind", "callspam", "-k", "4"], 4),
    ("openids", "5 open-id table fill", ["-kind", "openids", "-k", "2"], 8),
    ("partial", "6 half-sent messages and bodies", ["-kind", "partial", "-k", "60"], 20),
    ("ice", "7 ICE flood at a ringing bot", ["-kind", "ice", "-k", "1"], 4),
]


REFUSAL_FAMILIES = ("botcall_rate_limited_total", "botcall_connections_refused_total", "botcall_buffer_refused_total",
                    "botcall_ws_closed_total", "botcall_ws_errors_sent_total", "botcall_table_full_total",
                    "botcall_auth_failures_total", "botcall_ws_message_timeouts_total", "botcall_http_timeouts_total")


def series_values(text):
    """Every sample of a Prometheus text: {series with labels: value}."""
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            k, _, v = ln.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def read_hwm_reset(pid):
    """VmHWM (kB) since the last reset, then resets it (/proc/PID/clear_refs)."""
    h = hwm_kb(pid)
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return h


def phase_attack(a, keys_dir, res):
    keys = os.path.join(keys_dir, "keys.json")
    out = res.setdefault("attack", {})
    window = 8 if a.quick else 15
    ramp = 3
    pace_ms = 35
    port = free_port(19600)
    # The default protections (the other phases lift the per-client limits).
    extra = ["--open-registration", "--max-connections", "20000"]
    bp = start_botcalld("attack.botcalld", port, keys, extra=extra, defaults=True)
    url = f"http://127.0.0.1:{port}"
    wsu = f"ws://127.0.0.1:{port}/v1/ws"
    out["daemon_flags"] = " ".join(extra)
    try:
        ids = mint(keys_dir, os.path.join(TMP, "attack.ids"), "hs", "bench-seed-", 40)
        run([BOTLOAD, "register", "-url", url, "-dir", keys_dir, "-prefix", "bench-seed-", "-n", "40", "-conc", "4"])
        bots = mint(keys_dir, os.path.join(TMP, "attack.bots"), "hs", "bench-rl-b-", 16)
        lookup_src = ",".join(f"127.0.9.{i}" for i in range(1, 5))
        relay_src = ",".join(f"127.0.10.{i}" for i in range(1, 17))
        n_rt = int(window * 1000 / pace_ms)
        for w, (name, label, flags, nsrc) in enumerate([("quiet", "quiet (no attack)", None, 0)] + ATTACKS):
            atk = None
            if flags:
                victim = mint(keys_dir, os.path.join(TMP, f"attack.victim.{name}"), "hs", f"bench-victim-{name}-", 1)
                src = ",".join(f"127.1.{w}.{i}" for i in range(1, nsrc + 1))
                atk = start([BOTLOAD, "attack", "-url", wsu, "-src", src, "-bots", victim,
                             "-duration", f"{ramp + window + 30}s", "-max-run", f"{ramp + window + 60}s", *flags],
                            f"attack.{name}", stdout=subprocess.PIPE)
                time.sleep(ramp)
            read_hwm_reset(bp.pid)
            c0, t0 = ticks(bp.pid), time.time()
            m0 = http_get(url + "/metrics")
            lk = start([BOTLOAD, "lookup", "-url", url, "-ids", ids, "-src", lookup_src, "-rate", "40",
                        "-duration", f"{window}s"], f"attack.{name}.lookup", stdout=subprocess.PIPE)
            rl = start([BOTLOAD, "relay", "-url", wsu, "-bots", bots, "-pairs", "16", "-src", relay_src,
                        "-pace", f"{pace_ms}ms", "-n", str(n_rt), "-warmup", "16", "-server-pid", str(bp.pid),
                        "-max-run", f"{window + 60}s"], f"attack.{name}.relay", stdout=subprocess.PIPE)
            lo, _ = lk.communicate(timeout=window + 120)
            ro, _ = rl.communicate(timeout=window + 120)
            c1, t1 = ticks(bp.pid), time.time()
            m1 = http_get(url + "/metrics")
            hwm = read_hwm_reset(bp.pid)
            for p in (lk, rl):
                if p in PROCS:
                    PROCS.remove(p)
            r = {"label": label, "window_s": round(t1 - t0, 1), "cpu_pct": (c1 - c0) / HZ / (t1 - t0) * 100,
                 "peak_rss_kb": hwm, "rss_kb": rss_kb(bp.pid)}
            try:
                r["lookup"] = json.loads(lo.strip().splitlines()[-1])
                r["relay"] = json.loads(ro.strip().splitlines()[-1])
            except (IndexError, ValueError):
                raise RuntimeError(f"probe output: {lo!r} {ro!r} {tail(f'attack.{name}.relay')}")
            if atk is not None:
                atk.send_signal(signal.SIGTERM)
                ao, _ = atk.communicate(timeout=60)
                if atk in PROCS:
                    PROCS.remove(atk)
                try:
                    r["attack"] = json.loads(ao.strip().splitlines()[-1])
                except (IndexError, ValueError):
                    r["attack"] = {"error": tail(f"attack.{name}")}
            v0, v1 = series_values(m0), series_values(m1)
            refusals = {k: v - v0.get(k, 0.0) for k, v in v1.items()
                        if k.startswith(REFUSAL_FAMILIES) and v != v0.get(k, 0.0)}
            r["daemon_counted"] = refusals
            out[name] = r
            lk_, rl_ = r["lookup"], r["relay"]
            log(f"attack {name}: lookup p50 {lk_['p50_us']:.0f} p99 {lk_['p99_us']:.0f} us ({lk_['requests']} ok, "
                f"{lk_['non200']} non-200, {lk_['errors']} errors); relay p50 {rl_['p50_us']:.0f} p99 {rl_['p99_us']:.0f} us "
                f"({rl_['round_trips']} rt, {rl_['errors']} errors, {rl_['timeouts']} timeouts); daemon cpu {r['cpu_pct']:.0f}% "
                f"peak rss {hwm} kB; attack {json.dumps(r.get('attack', {}).get('outcomes', {}))[:300]}")
            time.sleep(2)
    finally:
        stop(bp)


# ----------------------------------------------------------------------------- cluster (issue 8)
def phase_cluster(a, keys_dir, res):
    """Two daemons on one redis-server: lookups answered by B for agents
    registered on A, and the relay with callers on A and bots on B."""
    keys = os.path.join(keys_dir, "keys.json")
    out = res.setdefault("cluster", {})
    pin = not a.no_pin
    rport = free_port(19400)
    redis = start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no"], "cluster.redis")
    wait_port(rport, proc=redis)
    store = f"redis://127.0.0.1:{rport}/0"
    pa = free_port(19410)
    da = start_botcalld("cluster.a", pa, keys, extra=["--store", store, "--ws-rate", "0"])
    pb = free_port(pa + 10)
    db = start_botcalld("cluster.b", pb, keys, extra=["--store", store, "--ws-rate", "0"],
                        cpus="0" if pin else None)
    ua, ub = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
    try:
        seed = mint(keys_dir, os.path.join(TMP, "cluster.seed.tok"), "hs", "bench-seed-", 1000)
        run([BOTLOAD, "register", "-url", ua, "-dir", keys_dir, "-prefix", "bench-seed-", "-n", "1000"])
        runs = []
        for rep in range(a.reps):
            (u0, k0), r0 = ticks2(db.pid), ticks(redis.pid)
            o = wrk(ub, os.path.join(HERE, "wrk", "botcall_lookup.lua"), {"IDS": seed}, a.http_secs, pin)
            (u1, k1), r1 = ticks2(db.pid), ticks(redis.pid)
            r = parse_wrk(o)
            if r.get("requests"):
                r["cpu_us_per_req"] = (u1 + k1 - u0 - k0) / HZ * 1e6 / r["requests"]
                r["redis_cpu_us_per_req"] = (r1 - r0) / HZ * 1e6 / r["requests"]
            runs.append(r)
            log(f"cluster lookup on B rep {rep}: {r.get('rps', 0):.0f} req/s p50 {r.get('p50_ms')} ms "
                f"p99 {r.get('p99_ms')} ms daemon {r.get('cpu_us_per_req', 0):.1f} + redis "
                f"{r.get('redis_cpu_us_per_req', 0):.1f} us/req non2xx {r['non2xx']}")
        out["lookup"] = {f: median([r.get(f) for r in runs]) for f in
                         ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "redis_cpu_us_per_req")}
        out["lookup"]["non2xx"] = sum(r.get("non2xx", 0) for r in runs)
        n, warm = (1000, 200) if a.quick else (2000, 500)
        bots = mint(keys_dir, os.path.join(TMP, "cluster.bots"), "hs", "bench-cl-b-", 8)
        go = []
        for rep in range(1 if a.quick else 3):
            g = run([BOTLOAD, "relay", "-url", f"ws://127.0.0.1:{pa}/v1/ws", "-bot-url", f"ws://127.0.0.1:{pb}/v1/ws",
                     "-bots", bots, "-pairs", "4", "-n", str(n), "-warmup", str(warm)],
                    timeout=240).stdout.strip().splitlines()[-1]
            go.append(json.loads(g))
            log(f"cluster relay A->B rep {rep}: p50 {go[-1]['p50_us']:.0f} p99 {go[-1]['p99_us']:.0f} "
                f"max {go[-1]['max_us']:.0f} us")
        out["relay_go"] = go
    finally:
        for p in (da, db, redis):
            stop(p)

# ----------------------------------------------------------------------------- table
def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if abs(v) >= 10000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def ratio(b, g):
    if b is None or g in (None, 0):
        return None
    return b / g


def build_table(res):
    rows = []  # metric, botcalld, ref, ratio, goal, met

    def row(metric, b, g, goal="", met="", nd=1, r="auto"):
        rr = ratio(b, g) if r == "auto" else r
        rows.append([metric, fmt(b, nd), fmt(g, nd), (f"{rr:.2f}" if isinstance(rr, float) else (rr or "–")),
                     goal, met])

    def yes(ok):
        return "yes" if ok else "NO"

    h = res.get("http", {}).get("summary")
    if h:
        b, g, n = h["b_lookup"], h["g_lookup"], h["n_lookup"]
        r = ratio(b["cpu_us_per_req"], g["cpu_us_per_req"])
        row("GET /lookup: server CPU µs/req (go-seed: HS256 JWT on every route)", b["cpu_us_per_req"], g["cpu_us_per_req"],
            goal="≤ 0.33", met=yes(r is not None and r <= 1 / 3))
        r2 = ratio(b["cpu_us_per_req"], n["cpu_us_per_req"])
        row("GET /lookup: server CPU µs/req vs go-seed without auth", b["cpu_us_per_req"], n["cpu_us_per_req"],
            goal="(≤ 0.33)", met=yes(r2 is not None and r2 <= 1 / 3))
        row("GET /lookup: of which user-space µs/req (rest: kernel, mostly loopback TCP)", b["user_us_per_req"],
            g["user_us_per_req"], goal="info", met="info")
        row("GET /lookup: req/s (64 conns)", b["rps"], g["rps"], nd=0)
        row("GET /lookup: p50 ms", b["p50_ms"], g["p50_ms"], nd=3)
        row("GET /lookup: p99 ms", b["p99_ms"], g["p99_ms"], nd=3)
        gr = h["g_reg"]
        for key, label, goal in (("b_reg_hs_fresh", "POST /register HS256, fresh token/req", "≤ 0.33"),
                                 ("b_reg_hs_cached", "POST /register HS256, cached token", "≤ 0.33"),
                                 ("b_reg_es_fresh", "POST /register ES256, fresh token/req", "≤ 100 µs"),
                                 ("b_reg_es_cached", "POST /register ES256, cached token", "")):
            b = h[key]
            r = ratio(b["cpu_us_per_req"], gr["cpu_us_per_req"])
            if goal.endswith("µs"):  # a value goal (issue 17), not a ratio
                met = yes(b["cpu_us_per_req"] is not None and b["cpu_us_per_req"] <= 100)
            else:
                met = yes(r is not None and r <= 1 / 3) if goal else "info"
            row(f"{label}: server CPU µs/req (go-seed: HS256)", b["cpu_us_per_req"], gr["cpu_us_per_req"],
                goal=goal, met=met)
            if key == "b_reg_hs_fresh":
                row(f"{label}: of which user-space µs/req", b["user_us_per_req"], gr["user_us_per_req"],
                    goal="info", met="info")
            row(f"{label}: req/s", b["rps"], gr["rps"], nd=0)
            row(f"{label}: p50 / p99 ms", f"{fmt(b['p50_ms'], 3)} / {fmt(b['p99_ms'], 3)}",
                f"{fmt(gr['p50_ms'], 3)} / {fmt(gr['p99_ms'], 3)}", r="–")
        row("POST /register vs go-seed without auth: CPU µs/req (botcalld HS256 fresh)",
            h["b_reg_hs_fresh"]["cpu_us_per_req"], h["n_reg"]["cpu_us_per_req"])
    hl = res.get("hello", {})
    if hl.get("hs") and hl.get("es"):
        hs, es = median([x["cpu_us_per_hello"] for x in hl["hs"]]), median([x["cpu_us_per_hello"] for x in hl["es"]])
        row("bot connect + hello, fresh HS256 token: server CPU µs/bot (accept, upgrade, verify, welcome)", hs, None,
            goal="info", met="info", r="–")
        row("bot connect + hello, fresh ES256 token: server CPU µs/bot", es, None,
            goal="≤ 100", met=yes(es is not None and es <= 100), r="–")
    bd = res.get("build", {})
    if bd.get("botcalld_bytes"):
        row("binary: stripped botcalld (PWA inside), bytes (ref = go-seed)", bd["botcalld_bytes"],
            bd.get("go_seed_bytes"), goal="≤ 2,000,000", met=yes(bd["botcalld_bytes"] <= 2_000_000), nd=0)
    m = res.get("mem")
    if m:
        row("memory per table entry, 100k agents: bytes (RSS delta / 100k)", m["botcalld"]["bytes_per_entry"],
            m["go-seed"]["bytes_per_entry"], goal="report", met="info", nd=0)
    w = res.get("ws", {})
    if "b10k" in w:
        b, g = w["b10k"], w.get("g10k", {})
        kb = b["kb_per_conn"]
        row(f"10k idle bot WebSockets: RSS KB/conn (median over {b['window_s']:.0f} s window)", kb,
            g.get("kb_per_conn"), goal="≤ 1.5 (aim 1.0)",
            met=("yes (≤1.0)" if kb is not None and kb <= 1.0 else yes(kb is not None and kb <= 1.5)), nd=2)
        r = ratio(b["server_cpu_pct"], g.get("server_cpu_pct"))
        row("10k idle bots heartbeating: server CPU % of one core", b["server_cpu_pct"], g.get("server_cpu_pct"),
            goal="≤ 0.33", met=yes(r is not None and r <= 1 / 3), nd=2)
        if "b10k_noping" in w:
            c = w["b10k_noping"]["server_cpu_pct"]
            r = ratio(c, g.get("server_cpu_pct"))
            row("  same, botcalld without its 30 s pings (--heartbeat-interval 600): CPU %", c,
                g.get("server_cpu_pct"), goal="(≤ 0.33)", met=yes(r is not None and r <= 1 / 3), nd=2)
        row("10k: connected / failed", f"{b['connected']} / {b['failed']}",
            f"{g.get('connected')} / {g.get('failed')}", r="–")
    if "b19k" in w:
        b = w["b19k"]
        row(f"{b['connected']} idle bots in ONE botcalld process: RSS KB/conn", b["kb_per_conn"], None,
            goal="≤ 1.5", met=yes(b["kb_per_conn"] is not None and b["kb_per_conn"] <= 1.5), nd=2)
    if "b50k" in w:
        b, g = w["b50k"], w.get("g50k", {})
        row(f"50k idle bots over {b['servers']} processes: RSS KB/conn (connected {b['connected']})", b["kb_per_conn"],
            g.get("kb_per_conn"), goal="≤ 1.5", met=yes(b["kb_per_conn"] is not None and b["kb_per_conn"] <= 1.5), nd=2)
    rl = res.get("relay", {})
    if rl.get("botcalld_python"):
        py, pj = rl["botcalld_python"], rl.get("peerjs_python") or []

        def med(lst, f):
            return median([x.get(f) for x in lst]) if lst else None
        idle = rl.get("bots_online_during")
        p99 = med(py, "p99_us")
        row(f"relay p50 µs, {int(idle or 0)} idle bots (Python client; ref = PeerJS, 10k idle)", med(py, "p50_us"), med(pj, "p50_us"), nd=0)
        row("relay p99 µs (Python client; ref = PeerJS)", p99, med(pj, "p99_us"), goal="< 1000", met=yes(p99 is not None and p99 < 1000), nd=0)
        row("relay max µs (Python client; ref = PeerJS)", med(py, "max_us"), med(pj, "max_us"), nd=0)
        scpu, pcpu = med(py, "server_cpu_us_per_rt_net_of_idle"), med(pj, "server_cpu_us_per_rt_net_of_idle")
        sr = ratio(scpu, pcpu)
        row("relay server CPU µs/round trip, net of idle (ref = PeerJS)", scpu, pcpu, goal="≤ 0.25",
            met=yes(sr is not None and sr <= 0.25) if pcpu else "", nd=0)
        row("relay client CPU µs/round trip (Python, inside the latency)", med(py, "client_cpu_us_per_rt"),
            med(pj, "client_cpu_us_per_rt"), r="–", nd=0)
        go = rl.get("botcalld_go") or []
        gp99 = med(go, "p99_us")
        row("relay p50 / p99 / max µs (Go client, less client overhead)",
            f"{fmt(med(go, 'p50_us'), 0)} / {fmt(gp99, 0)} / {fmt(med(go, 'max_us'), 0)}", None,
            goal="p99 < 1000", met=yes(gp99 is not None and gp99 < 1000), r="–")
        fl = rl.get("floor_go") or []
        if fl:
            fcpu, gcpu = med(fl, "server_cpu_us_per_rt"), med(go, "server_cpu_us_per_rt")
            row("relay server CPU µs/round trip, Go client (ref = floor: `botload floor`, the same socket "
                "operations and nothing else)", gcpu, fcpu, goal="info", met="info")
            pcpu = med(pj, "server_cpu_us_per_rt_net_of_idle")
            row("relay floor: server CPU µs/round trip (Go client) vs PeerJS's (ref; Python client): "
                "the kernel's share of ¼ of PeerJS", fcpu, pcpu, goal="info", met="info")
            row("relay floor p50 µs (Go client; ref = botcalld, Go client)", med(fl, "p50_us"), med(go, "p50_us"),
                nd=0)
    at = res.get("attack", {})
    if at.get("quiet"):
        q = at["quiet"]

        def probe(r):
            lk, rl = r.get("lookup", {}), r.get("relay", {})
            return (f"lookup {fmt(lk.get('p50_us', 0) / 1000, 2)}/{fmt(lk.get('p99_us', 0) / 1000, 2)} ms · "
                    f"relay {fmt(rl.get('p50_us'), 0)}/{fmt(rl.get('p99_us'), 0)} µs · "
                    f"CPU {fmt(r.get('cpu_pct'), 0)}% · peak {fmt(r.get('peak_rss_kb', 0) / 1024, 1)} MB")

        def clean(r):
            lk, rl = r.get("lookup", {}), r.get("relay", {})
            return (lk.get("non200", 1) == 0 and lk.get("errors", 1) == 0 and rl.get("errors", 1) == 0
                    and rl.get("timeouts", 1) == 0 and rl.get("round_trips", 0) > 0)
        for name, label, *_ in ATTACKS:
            r = at.get(name)
            if not r:
                continue
            rr = ratio(r.get("relay", {}).get("p99_us"), q.get("relay", {}).get("p99_us"))
            row(f"under attack, finding {label}: legit lookup p50/p99, relay p50/p99 (ref = quiet, same run)",
                probe(r), probe(q), goal="legit ok", met=yes(clean(r)), r=(f"{rr:.2f}" if rr else "–"))
    cl = res.get("cluster", {})
    if cl.get("lookup"):
        lk = cl["lookup"]
        single = (res.get("http", {}).get("summary") or {}).get("b_lookup", {})
        row("2 daemons + Redis: GET /lookup on B (registered on A): req/s (ref = one daemon)", lk["rps"],
            single.get("rps"), nd=0)
        row("2 daemons + Redis: GET /lookup p50 / p99 ms (ref = one daemon)",
            f"{fmt(lk['p50_ms'], 3)} / {fmt(lk['p99_ms'], 3)}",
            f"{fmt(single.get('p50_ms'), 3)} / {fmt(single.get('p99_ms'), 3)}" if single else None, r="–")
        row("2 daemons + Redis: lookup CPU µs/req, daemon + redis-server (ref = one daemon)",
            f"{fmt(lk['cpu_us_per_req'])} + {fmt(lk['redis_cpu_us_per_req'])}", single.get("cpu_us_per_req"), r="–")
    if cl.get("relay_go"):
        go = cl["relay_go"]

        def medc(f):
            return median([x.get(f) for x in go])
        single = (res.get("relay", {}) or {}).get("botcalld_go") or []
        ref = (f"{fmt(median([x.get('p50_us') for x in single]), 0)} / {fmt(median([x.get('p99_us') for x in single]), 0)}"
               if single else None)
        row("2 daemons + Redis: relay caller on A -> bot on B, p50 / p99 / max µs (ref = one daemon, Go client)",
            f"{fmt(medc('p50_us'), 0)} / {fmt(medc('p99_us'), 0)} / {fmt(medc('max_us'), 0)}", ref, r="–")
    return rows


def render(rows):
    hdr = ["metric", "botcalld", "go-seed (ref)", "ratio b/ref", "goal (ratio or value)", "met?"]
    allr = [hdr] + rows
    wd = [max(len(r[i]) for r in allr) for i in range(len(hdr))]
    line = lambda r: "| " + " | ".join(c.ljust(wd[i]) for i, c in enumerate(r)) + " |"
    out = [line(hdr), "|" + "|".join("-" * (w + 2) for w in wd) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~3 minutes: 1 rep, shorter windows, no 19.9k/50k, no PeerJS")
    ap.add_argument("--only", default="http,hello,mem,ws,relay,cluster,attack",
                    help="comma list of phases: http,hello,mem,ws,relay,cluster,attack")
    ap.add_argument("--reps", type=int, help="wrk repetitions per scenario (default 3; quick 1)")
    ap.add_argument("--http-secs", type=int, help="seconds per wrk run (default 4; quick 2)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server to CPU 0 and wrk to CPU 1")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--no-peerjs", action="store_true", help="skip the PeerJS relay reference")
    ap.add_argument("--no-go50k", action="store_true", help="skip go-seed at 50k (~1 GB RSS)")
    ap.add_argument("--relay-idle", type=int, default=10000, help="idle bots during the relay phase")
    ap.add_argument("--dial-rate", type=int, default=4000, help="new WebSockets per second, all load generators")
    ap.add_argument("--per-loadgen", type=int, default=15000, help="connections per load generator process")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.md"), help="results file (.md; raw .json beside it)")
    ap.add_argument("--max-run", type=int, default=1500, help="hard cap on the whole run, seconds")
    a = ap.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.http_secs = a.http_secs or (2 if a.quick else 4)
    phases = set(a.only.split(","))
    a.relay = "relay" in phases
    a.peerjs = a.relay and not a.no_peerjs and not a.quick

    global TMP
    TMP = tempfile.mkdtemp(prefix="botcall-bench.")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    atexit.register(stop_all)

    def on_signal(sig, _):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)

    def on_alarm(*_):
        raise TimeoutError(f"--max-run {a.max_run}s exceeded")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(a.max_run)

    t_start = time.time()
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "commit": git("rev-parse", "--short", "HEAD"),
           "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
           "loadavg_start": open("/proc/loadavg").read().split()[:3],
           "nproc": os.cpu_count(), "mode": "quick" if a.quick else "full",
           "command": " ".join(["benches/run"] + sys.argv[1:]), "nofile": hard, "errors": {}}
    try:
        res["build"] = build(a)
        keys_dir = os.path.join(TMP, "keys")
        run([BOTLOAD, "setup", "-dir", keys_dir])
        for name, fn in (("http", phase_http), ("hello", phase_hello), ("mem", phase_mem), ("ws", phase_ws),
                         ("relay", phase_relay),
                         ("cluster", phase_cluster), ("attack", phase_attack)):
            if name not in phases:
                continue
            log(f"=== phase {name}")
            try:
                fn(a, keys_dir, res)
            except (RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
                res["errors"][name] = f"{type(e).__name__}: {e}"
                log(f"phase {name} failed: {e}")
            finally:
                for p in list(PROCS):
                    stop(p)
    except (KeyboardInterrupt, TimeoutError) as e:
        res["errors"]["run"] = str(e)
        log(f"stopped: {e}")
    finally:
        signal.alarm(0)
        stop_all()
    res["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    res["run_s"] = round(time.time() - t_start, 1)
    rows = build_table(res)
    table = render(rows)
    print()
    print(table)
    if res["errors"]:
        print("\nerrors:", json.dumps(res["errors"], indent=1))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    notes = [
        f"# BotCall load benchmark — {res['date']}",
        "",
        f"- command: `{res['command']}` ({res['mode']} mode, {res['run_s']} s)",
        f"- commit: {res['commit']}{' + uncommitted changes' if res['dirty'] else ''}",
        f"- machine: {res['nproc']} CPUs, load average {' '.join(res['loadavg_start'])} at start, "
        f"{' '.join(res['loadavg_end'])} at end (shared machine: other jobs ran meanwhile); open-files limit {hard}",
        f"- HTTP: wrk -t1 -c64 -d{a.http_secs}s, {a.reps} run(s) per scenario, medians; "
        + ("server pinned to CPU 0, wrk to CPU 1 (taskset)" if not a.no_pin else "no CPU pinning")
        + "; rate limits off on both (botcalld --rate-ip 0 --rate-agent 0, go-seed -rate 0)",
        "- WebSockets: botload ws (Go, gorilla); botcalld bots send Authorization: Bearer <per-bot HS256 BotAuth> + "
        "hello, then {\"type\":\"ping\"} every 25 s; go-seed clients send \"ping\" every 25 s; botcalld also pings every 30 s",
        "",
        table,
        "",
    ]
    if res["errors"]:
        notes += ["## Errors", "", "```", json.dumps(res["errors"], indent=1), "```", ""]
    notes += ["## Raw numbers", "", "```json", json.dumps(res, indent=1, default=str), "```", ""]
    with open(a.out, "w") as f:
        f.write("\n".join(notes))
    with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(f"\nresults: {a.out}")
    shutil.rmtree(TMP, ignore_errors=True)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
