"""The `botcall` Python package against a real botcalld over real sockets.

Run by tests/all (after `maturin build` and `pip install` of the wheel):
    BOTCALLD=target/debug/botcalld python -m pytest -q tests/python
The caller is tests/aiortc_peer.py (aiortc, a WebRTC stack nobody here wrote).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import botcall
import pytest
from _daemon import BOTCALLD, Daemon

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def daemon(tmp_path: Path):
    d = Daemon(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def key(tmp_path: Path) -> str:
    out = tmp_path / "bot.jwk"
    subprocess.run([BOTCALLD, "keygen", "--out", str(out)], check=True, capture_output=True)
    return str(out)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> str:
    wav = tmp_path_factory.mktemp("wav") / "hello.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav), "hello, this is a test of the python bot"], check=True
    )
    return str(wav)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def caller(daemon: Daemon, agent: str, wav: str, *extra: str):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "aiortc_peer.py"),
        "caller",
        "--ws",
        daemon.ws,
        f"--to={agent}",  # a thumbprint may start with "-"
        "--wav",
        wav,
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


def result(out: str) -> dict:
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_registers_goes_online_and_echoes_a_call_both_ways(daemon, key, speech_wav):
    async def main():
        bot = await botcall.Bot.connect(daemon.url, key=key, name="Py echo", listed=True)
        assert bot.online and bot.agent_id
        sys.path.insert(0, str(ROOT / "examples" / "python"))
        import echo_bot

        async def serve():
            async for call in bot.calls():
                assert call.caller["hv"] == "none" and call.caller["session"]
                await echo_bot.talk(call)
                return call

        served = asyncio.create_task(serve())
        rc, out, err = await caller(daemon, bot.agent_id, speech_wav)
        assert rc == 0, err
        r = result(out)
        call = await asyncio.wait_for(served, 30)
        await bot.close()
        return r, call

    r, call = run(main())
    # The caller heard its own speech back: the envelopes correlate.
    assert r["received_frames"] > 50, r
    assert r["echo_rms"] > 0.1 * r["sent_rms"], r
    assert r["correlation"] > 0.5, r
    assert call.end_reason == "remote_hangup"


def test_a_bad_key_is_an_auth_error(daemon, tmp_path):
    bad = tmp_path / "bad.jwk"
    bad.write_text('{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","d":"AAAA"}')
    with pytest.raises(botcall.AuthError):
        run(botcall.Bot.connect(daemon.url, key=str(bad)))
    # A well-formed key the daemon does not know, for an id it refuses.
    hs = tmp_path / "hs.jwk"
    hs.write_text('{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY"}')
    with pytest.raises(botcall.AuthError):
        run(botcall.Bot.connect(daemon.url, key=str(hs), agent_id="not-known"))


def test_unreachable_daemon_and_bad_arguments_are_typed(key, tmp_path):
    with pytest.raises(botcall.DaemonUnavailable):
        run(botcall.Bot.connect("http://127.0.0.1:9", key=key))
    with pytest.raises(botcall.ConfigError):
        run(botcall.Bot.connect("ftp://nowhere", key=key))
    with pytest.raises(botcall.ConfigError):
        run(botcall.Bot.connect("http://127.0.0.1:9", key=str(tmp_path / "missing.jwk")))
    with pytest.raises(botcall.ConfigError):
        run(botcall.Bot.connect("http://127.0.0.1:9", key=key, max_calls=9))
    assert issubclass(botcall.ConfigError, ValueError)


def test_a_call_whose_attestation_fails_the_policy_never_reaches_calls(daemon, key, speech_wav):
    async def main():
        # The daemon checks nothing (hv=none): a bot that wants a real human
        # check refuses the call in Rust, before Python sees it.
        bot = await botcall.Bot.connect(daemon.url, key=key, require_human=True)
        got = asyncio.create_task(bot.next_call())
        rc, out, err = await caller(daemon, bot.agent_id, speech_wav)
        await asyncio.sleep(0.5)
        assert not got.done()
        refused = bot.status()["refused_calls"]
        got.cancel()
        await bot.close()
        return rc, err, refused

    rc, err, refused = run(main())
    assert rc != 0, "the call must not be answered"
    assert refused >= 1


def test_the_bot_comes_back_online_after_a_daemon_restart(tmp_path, key):
    d = Daemon(tmp_path)

    async def main():
        nonlocal d
        bot = await botcall.Bot.connect(d.url, key=key)
        assert bot.online
        port = d.port
        d.stop()
        for _ in range(100):
            if not bot.online:
                break
            await asyncio.sleep(0.05)
        assert not bot.online
        d = Daemon(tmp_path, port=port)
        for _ in range(300):
            if bot.online:
                break
            await asyncio.sleep(0.1)
        assert bot.online, bot.status()
        assert bot.status()["sessions"] >= 2
        await bot.close()

    try:
        run(main())
    finally:
        d.stop()
