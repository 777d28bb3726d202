#!/usr/bin/env python3
"""A BotCall bot that converses offline: pocketsphinx listens, espeak-ng answers.

    python examples/python/voice_bot.py --daemon http://127.0.0.1:8080 --key bot.jwk [--llm URL]

Intents: "hello"/"hi", "what time is it", "repeat after me ...". With --llm URL
each utterance goes to an OpenAI-compatible chat endpoint instead (URL is the
server's base, e.g. http://127.0.0.1:8000 or .../v1; the key, if any, comes
from $OPENAI_API_KEY); when it fails or times out the bot says so and the
call goes on. An energy gate ends an utterance after 0.7 s of quiet; when the
caller talks over the bot, the bot stops talking (speaker.clear()).
Needs: pip install pocketsphinx==5.1.1; apt install espeak-ng.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import io
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
from typing import Optional

import botcall
from pocketsphinx import Decoder

RATE = 16000
SPEECH_RMS = 300.0  # PCM16 level that counts as speech
END_SILENCE = 0.7  # seconds of quiet that end an utterance
# espeak-ng's Klatt voice at 140 words/min: of the voices tried, the one
# pocketsphinx's model transcribes best (docs/python.md, "Voice bot").
VOICE, SPEED = "en-us+klatt4", 140
HISTORY = 10  # chat turns kept per call for the LLM
SORRY = "sorry, my language model did not answer"


class LlmError(Exception):
    """The chat endpoint failed: unreachable, timed out, an HTTP error, or an
    answer that is not a chat completion. The message says which."""


def rms(pcm: bytes) -> float:
    a = array.array("h", pcm)
    return math.sqrt(sum(s * s for s in a) / len(a)) if a else 0.0


def tts(text: str, voice: str = VOICE, speed: int = SPEED) -> tuple[bytes, int]:
    """espeak-ng's speech for `text`: (PCM16 mono, rate)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


def chat_url(base: str) -> str:
    """The chat completions URL for a server's base URL (with or without /v1)."""
    base = base.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def ask_llm(url: str, messages: list[dict], model: str = "default", timeout: float = 20.0) -> str:
    """One chat completion from an OpenAI-compatible server. Raises LlmError."""
    body = json.dumps({"model": model, "messages": messages}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("OPENAI_API_KEY"):
        headers["Authorization"] = "Bearer " + os.environ["OPENAI_API_KEY"]
    req = urllib.request.Request(chat_url(url), data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read(1 << 20)
    except urllib.error.HTTPError as e:
        detail = e.read(2000).decode(errors="replace")
        try:
            detail = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        raise LlmError(f"{chat_url(url)} answered HTTP {e.code}: {detail}") from e
    except (socket.timeout, TimeoutError) as e:
        raise LlmError(f"{chat_url(url)} gave no answer within {timeout:g} s") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, (socket.timeout, TimeoutError)):
            raise LlmError(f"{chat_url(url)} gave no answer within {timeout:g} s") from e
        raise LlmError(f"cannot reach {chat_url(url)}: {e.reason}") from e
    except OSError as e:
        raise LlmError(f"{chat_url(url)}: {e}") from e
    try:
        text = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise LlmError(f"{chat_url(url)} sent no chat completion: {raw[:200]!r}") from e
    if not isinstance(text, str):
        raise LlmError(f"{chat_url(url)} sent no text: {raw[:200]!r}")
    return text.strip()


def answer(text: str) -> Optional[str]:
    t = text.lower()
    if "repeat after me" in t:
        rest = t.split("repeat after me", 1)[1].strip()
        return rest or "repeat what?"
    if "time" in t.split():
        return time.strftime("the time is %H %M")
    if "hello" in t or {"hi", "hey"} & set(t.split()):
        return "hi there, nice to meet you"
    return f"you said {t}" if t else None


class Llm:
    """The conversation with an OpenAI-compatible endpoint for one call."""

    def __init__(self, url: str, model: str, timeout: float) -> None:
        self.url, self.model, self.timeout = url, model, timeout
        self.turns: collections.deque[dict] = collections.deque(maxlen=2 * HISTORY)

    async def reply(self, heard: str) -> str:
        system = {"role": "system", "content": "You answer phone calls. Be brief."}
        user = {"role": "user", "content": heard}
        messages = [system, *self.turns, user]
        try:
            text = await asyncio.to_thread(ask_llm, self.url, messages, self.model, self.timeout)
        except LlmError as e:
            print(f"llm error: {e}", file=sys.stderr, flush=True)
            return SORRY
        self.turns.extend([user, {"role": "assistant", "content": text}])
        return text


async def talk(call: botcall.Call, llm: Optional[Llm], voice: str = VOICE) -> None:
    dec = Decoder(samprate=RATE)
    async with call:
        mic = call.audio_input(sample_rate=RATE)
        speaker: Optional[botcall.AudioOutput] = None
        speaking: Optional[asyncio.Task] = None
        in_speech, quiet = False, 0.0
        preroll: collections.deque[bytes] = collections.deque(maxlen=15)  # 300 ms

        async def respond(heard: str) -> None:
            nonlocal speaker
            reply = await llm.reply(heard) if llm else answer(heard)
            if not reply:
                return
            print(f"say: {reply}", flush=True)
            pcm, rate = await asyncio.to_thread(tts, reply, voice)
            if speaker is None or speaker.sample_rate != rate:
                speaker = call.audio_output(sample_rate=rate)
            step = rate // 50 * 2
            for i in range(0, len(pcm), step):
                await speaker.write(pcm[i : i + step])
            print(f"said: {reply}", flush=True)

        try:
            async for frame in mic:
                loud = rms(frame.data) > SPEECH_RMS
                if loud and not in_speech:
                    in_speech, quiet = True, 0.0
                    dec.start_utt()
                    if speaking and not speaking.done():  # barge-in
                        speaking.cancel()
                        if speaker:
                            speaker.clear()
                        print("barge-in: stopped answering", flush=True)
                if not in_speech:
                    preroll.append(frame.data)
                    continue
                while preroll:  # the quiet start of the first word
                    dec.process_raw(preroll.popleft(), False, False)
                dec.process_raw(frame.data, False, False)
                quiet = 0.0 if loud else quiet + 0.02
                if quiet >= END_SILENCE:
                    in_speech = False
                    dec.end_utt()
                    heard = dec.hyp().hypstr if dec.hyp() else ""
                    print(f"heard: {heard}", flush=True)
                    if heard:  # answer while listening on
                        speaking = asyncio.create_task(respond(heard))
        except botcall.CallEnded:
            pass
        finally:
            if speaking and not speaking.done():
                speaking.cancel()
    print(f"call {call.id} ended: {call.end_reason}", flush=True)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--daemon", default="http://127.0.0.1:8080")
    p.add_argument("--key", required=True)
    p.add_argument("--id")
    p.add_argument("--name", default="Python voice bot")
    p.add_argument("--listed", action="store_true")
    p.add_argument("--voice", default=VOICE, help="an espeak-ng voice (espeak-ng --voices)")
    p.add_argument("--llm", help="an OpenAI-compatible server's base URL")
    p.add_argument("--llm-model", default="default", help="the model name sent to --llm")
    p.add_argument("--llm-timeout", type=float, default=20.0, help="seconds per answer")
    a = p.parse_args()
    if a.llm:
        u = urllib.parse.urlparse(a.llm)
        if u.scheme not in ("http", "https") or not u.netloc:
            p.error(f"--llm must be an http:// or https:// URL, not {a.llm!r}")
    if not a.llm_timeout > 0:
        p.error("--llm-timeout must be > 0 seconds")
    llm_args = (a.llm, a.llm_model, a.llm_timeout) if a.llm else None
    try:
        bot = await botcall.Bot.connect(
            a.daemon, key=a.key, agent_id=a.id, name=a.name, listed=a.listed
        )
    except botcall.BotcallError as e:
        print(f"voice_bot: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"online as {bot.agent_id}", flush=True)
    tasks = set()
    async for call in bot.calls():
        llm = Llm(*llm_args) if llm_args else None
        t = asyncio.create_task(talk(call, llm, a.voice))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
