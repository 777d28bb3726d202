"""examples/python/voice_bot.py, the whole mission: a person in headless
Chromium asks the bot a question out loud and hears its spoken answer.

The question is a WAV made with espeak-ng, Chromium's fake microphone (it
loops the file, so the bot hears the question every few seconds); the page
(tests/e2e/voice.mjs) records what it receives from the bot; pocketsphinx
transcribes that recording here. With --llm the bot asks a real HTTP server
(tests/python/llm_server.py, an OpenAI-compatible endpoint on loopback).
Assertions are on words; every wait is for an event, with a long limit.
"""

from __future__ import annotations

import array
import json
import math
import queue
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Callable, Optional

import pytest
from pocketsphinx import Decoder
from test_botcall import ROOT, caller, daemon, key  # noqa: F401 (fixtures)

E2E = ROOT / "tests" / "e2e"
VOICE_BOT = ROOT / "examples" / "python" / "voice_bot.py"
LLM_SERVER = ROOT / "tests" / "python" / "llm_server.py"
sys.path.insert(0, str(VOICE_BOT.parent))
import voice_bot  # noqa: E402

LIMIT = 120  # seconds: only ends a wait that would never succeed


class Proc:
    """A child process whose stdout lines are read as they come."""

    def __init__(self, argv: list[str], **kw) -> None:
        self.argv = argv
        self.p = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, **kw
        )
        self.lines: queue.Queue[Optional[str]] = queue.Queue()
        self.seen: list[str] = []
        self.errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.errors.extend(self.p.stderr), daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pred: Callable[[str], bool], what: str, limit: float = LIMIT) -> str:
        deadline = time.time() + limit
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                line = None
                if time.time() < deadline:
                    continue
            if line is None:
                raise AssertionError(
                    f"{Path(self.argv[1]).name}: no {what} (exited={self.p.poll()}); "
                    f"stdout: {self.seen[-20:]}; stderr: {''.join(self.errors[-20:])}"
                )
            self.seen.append(line)
            if pred(line):
                return line

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def question_wav(path: Path, *parts: tuple[str, float]) -> str:
    """Each (text, quiet seconds after it) spoken by espeak-ng, in a row."""
    raw = path.with_suffix(".raw.wav")
    rate, out = 22050, [bytes(22050 // 2 * 2)]
    for text, quiet in parts:
        subprocess.run(
            ["espeak-ng", "-v", voice_bot.VOICE, "-s", str(voice_bot.SPEED), "-w", str(raw), text],
            check=True,
        )
        with wave.open(str(raw)) as w:
            rate = w.getframerate()
            out.append(w.readframes(w.getnframes()) + bytes(int(rate * quiet) * 2))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(out))
    return str(path)


def transcribe(pcm: bytes, rate: int = 16000) -> list[str]:
    """pocketsphinx's words for each stretch of speech in `pcm` (PCM16 mono)."""
    dec = Decoder(samprate=rate)
    frame = rate // 50 * 2
    out, utt, quiet = [], [], 0
    for i in range(0, len(pcm) - frame + 1, frame):
        f = pcm[i : i + frame]
        a = array.array("h", f)
        loud = math.sqrt(sum(s * s for s in a) / len(a)) > 300
        if loud or utt:
            utt.append(f)
            quiet = 0 if loud else quiet + 1
        if utt and quiet >= 25:  # 0.5 s of quiet ends it
            dec.start_utt()
            dec.process_raw(b"".join(utt), False, True)
            dec.end_utt()
            out.append(dec.hyp().hypstr if dec.hyp() else "")
            utt, quiet = [], 0
    return out


def has_words(line: str, words: str) -> bool:
    return all(w in line.split() for w in words.split())


def chromium_call(daemon, key, tmp_path, wav: str, until, extra=()):  # noqa: F811
    """Runs voice_bot.py and calls it from Chromium with `wav` as the
    microphone; `until(bot)` waits for what the test needs, then the page
    hangs up. Returns (bot, transcripts of what the page heard)."""
    bot = Proc([sys.executable, str(VOICE_BOT), "--daemon", daemon.url, "--key", key, *extra])
    page = None
    try:
        online = bot.wait_for(lambda ln: ln.startswith("online as "), "online")
        agent = online.split()[-1]
        out = tmp_path / "heard.pcm"
        page = Proc(
            ["node", str(E2E / "voice.mjs"), "--url", daemon.url, "--bot", agent,
             "--wav", wav, "--out", str(out)],
            cwd=E2E,
            stdin=subprocess.PIPE,
        )  # fmt: skip
        page.wait_for(lambda ln: ln == "RECORDING", "call")
        try:
            until(bot)
        finally:  # the page's side too when the wait failed (why it ended)
            page.p.stdin.write("stop\n")
            page.p.stdin.close()
            res = page.wait_for(lambda ln: ln.startswith("RESULT "), "result")
            r = json.loads(res[len("RESULT ") :])
        assert page.p.wait(30) == 0 and "error" not in r, r
        assert r["stateAtStop"] == "connected", r
        bot.wait_for(lambda ln: " ended: " in ln, "call end")
        heard = transcribe(out.read_bytes())
        print(f"bot: {bot.seen}\npage heard: {heard}")
        return bot, heard
    finally:
        if page:
            page.stop()
        bot.stop()


def converse(daemon, key, tmp_path, question: str, extra: list[str] = ()):  # noqa: F811
    """A Chromium call with `question` as the microphone (5 s of quiet after
    it, for the answer) until the bot heard the question's words and has
    answered twice; returns (bot, transcripts of what the page heard)."""

    def until(bot: Proc) -> None:
        bot.wait_for(lambda ln: ln.startswith("heard: ") and has_words(ln, question), "question")
        for _ in range(2):
            bot.wait_for(lambda ln: ln.startswith("said: "), "answer")
        # The next round of the question: the answer before it has played out.
        bot.wait_for(lambda ln: ln.startswith("heard: "), "next question")

    wav = question_wav(tmp_path / "question.wav", (question, 5.0))
    return chromium_call(daemon, key, tmp_path, wav, until, extra)


def test_chromium_asks_the_voice_bot_and_hears_its_answer(daemon, key, tmp_path):  # noqa: F811
    question = "hi there how are you"
    bot, heard = converse(daemon, key, tmp_path, question)
    lines = bot.seen
    asked = next(
        i for i, ln in enumerate(lines) if ln.startswith("heard: ") and has_words(ln, question)
    )
    # (An earlier hearing, before the decoder adapted, may have been answered
    # otherwise: "you said ...".)
    reply = next(ln for ln in lines[asked:] if ln.startswith("said: "))
    assert reply == "said: hi there, nice to meet you", lines
    # Words only the answer has (the question has none of them).
    assert any("nice to meet you" in h for h in heard), heard


def test_a_bot_that_listens_quietly_is_not_hung_up_on(daemon, key, tmp_path):  # noqa: F811
    # The caller says nothing for 12 s, so the bot sends no audio: the page
    # must keep the call (the bot is alive: ICE consent), not end it after
    # its 8 s media timeout. Seen under load as a voice test's flake.
    wav = question_wav(tmp_path / "quiet.wav")

    def until(bot: Proc) -> None:
        end = time.time() + 12
        while time.time() < end:
            try:
                line = bot.lines.get(timeout=max(0.1, end - time.time()))
            except queue.Empty:
                continue
            bot.seen.append(line)
            assert line is not None and " ended: " not in line, bot.seen

    bot, _ = chromium_call(daemon, key, tmp_path, wav, until)
    assert not any(ln.startswith(("heard: ", "say: ")) for ln in bot.seen), bot.seen


def test_talking_over_the_voice_bot_stops_its_answer(daemon, key, tmp_path):  # noqa: F811
    # The caller asks, pauses 1.5 s (the bot starts answering after 0.7 s of
    # quiet; its answer lasts ~2 s), then talks again: the bot must stop.
    wav = question_wav(
        tmp_path / "talk.wav", ("hi there how are you", 1.5), ("what is the weather like", 4.0)
    )
    barge = "barge-in: stopped answering"

    def until(bot: Proc) -> None:
        bot.wait_for(lambda ln: ln == barge, "barge-in")

    bot, _ = chromium_call(daemon, key, tmp_path, wav, until)
    lines = bot.seen
    cut = lines.index(barge)
    # What it was saying when the caller talked over it was never finished.
    says = [i for i, ln in enumerate(lines[:cut]) if ln.startswith("say: ")]
    assert says, lines
    assert f"said: {lines[says[-1]][5:]}" not in lines[says[-1] : cut], lines


@pytest.fixture
def llm():
    procs = []

    def start(*args: str) -> tuple[str, Proc]:
        p = Proc([sys.executable, str(LLM_SERVER), *args])
        procs.append(p)
        port = p.wait_for(lambda ln: ln.startswith("LISTENING "), "port", 30).split()[1]
        return f"http://127.0.0.1:{port}", p

    yield start
    for p in procs:
        p.stop()


def test_the_voice_bot_asks_an_openai_compatible_server(daemon, key, tmp_path, llm):  # noqa: F811
    url, server = llm("--reply", "the weather is nice today")
    question = "what is the weather like"
    bot, heard = converse(daemon, key, tmp_path, question, ["--llm", url, "--llm-model", "m1"])
    lines = server.seen + drain(server)
    requests = [json.loads(ln[len("REQUEST ") :]) for ln in lines if ln.startswith("REQUEST ")]
    asked = [r["messages"][-1]["content"] for r in requests]
    assert any(has_words(a, question) for a in asked), asked
    heard_lines = [ln[len("heard: ") :] for ln in bot.seen if ln.startswith("heard: ")]
    assert set(asked) <= set(heard_lines), (asked, heard_lines)
    assert all(r["model"] == "m1" for r in requests)
    # The conversation so far goes with each question.
    assert any(m["role"] == "assistant" for m in requests[-1]["messages"]), requests[-1]
    said = [ln for ln in bot.seen if ln.startswith("said: ")]
    assert said and all(ln == "said: the weather is nice today" for ln in said), bot.seen
    assert any("weather is nice today" in h for h in heard), heard


def drain(p: Proc) -> list[str]:
    out = []
    while True:
        try:
            line = p.lines.get(timeout=0.5)
        except queue.Empty:
            return out
        if line is None:
            return out
        out.append(line)


def test_llm_failures_are_clear_errors_and_the_bot_says_so(llm, capsys):
    msgs = [{"role": "user", "content": "hello"}]
    url, _ = llm("--status", "503")
    with pytest.raises(voice_bot.LlmError, match=r"HTTP 503: the model is overloaded"):
        voice_bot.ask_llm(url, msgs)
    url, _ = llm("--garbage")
    with pytest.raises(voice_bot.LlmError, match="no chat completion"):
        voice_bot.ask_llm(url + "/v1", msgs)
    url, hang = llm("--hang")
    with pytest.raises(voice_bot.LlmError, match=r"no answer within 1 s"):
        voice_bot.ask_llm(url, msgs, timeout=1)
    hang.wait_for(lambda ln: ln.startswith("REQUEST "), "the request")
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    with pytest.raises(voice_bot.LlmError, match="cannot reach"):
        voice_bot.ask_llm(f"http://127.0.0.1:{port}", msgs)
    # In a call the bot says it could not get an answer, and goes on.
    import asyncio

    url, _ = llm("--status", "500")
    reply = asyncio.run(voice_bot.Llm(url, "m", 5).reply("hello"))
    assert reply == voice_bot.SORRY
    assert "llm error: " in capsys.readouterr().err

    # A URL it cannot use is refused at start, with what was wrong.
    for bad in (["--llm", "ftp://example"], ["--llm", "localhost:8000"], ["--llm-timeout", "0"]):
        r = subprocess.run(
            [sys.executable, str(VOICE_BOT), "--key", "unused.jwk", *bad],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and "--llm" in r.stderr, (bad, r.stderr)
