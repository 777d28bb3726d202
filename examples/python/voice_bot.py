#!/usr/bin/env python3
"""A BotCall bot that converses offline: pocketsphinx listens, espeak-ng answers.

    python examples/python/voice_bot.py --daemon http://127.0.0.1:8080 --key bot.jwk [--llm URL]

Intents: "hello", "what time is it", "repeat after me ...". With --llm URL each
utterance goes to an OpenAI-compatible chat endpoint (URL/v1/chat/completions)
instead. An energy gate ends an utterance after 0.7 s of quiet; when the
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
import subprocess
import sys
import time
import urllib.request
import wave
from typing import Optional

import botcall
from pocketsphinx import Decoder

RATE = 16000
SPEECH_RMS = 300.0  # PCM16 level that counts as speech
END_SILENCE = 0.7  # seconds of quiet that end an utterance


def rms(pcm: bytes) -> float:
    a = array.array("h", pcm)
    return math.sqrt(sum(s * s for s in a) / len(a)) if a else 0.0


def tts(text: str) -> tuple[bytes, int]:
    """espeak-ng's speech for `text`: (PCM16 mono, rate)."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


def ask_llm(url: str, text: str) -> str:
    body = json.dumps(
        {
            "model": "any",
            "messages": [
                {"role": "system", "content": "You answer phone calls. Be brief."},
                {"role": "user", "content": text},
            ],
        }
    ).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["choices"][0]["message"]["content"]


def answer(text: str) -> Optional[str]:
    t = text.lower()
    if "repeat after me" in t:
        rest = t.split("repeat after me", 1)[1].strip()
        return rest or "repeat what?"
    if "time" in t:
        return time.strftime("it is %H %M")
    if "hello" in t or "hi" in t.split():
        return "hello, how can I help you"
    return f"you said {t}" if t else None


async def talk(call: botcall.Call, llm: Optional[str]) -> None:
    dec = Decoder(samprate=RATE)
    async with call:
        mic = call.audio_input(sample_rate=RATE)
        speaker: Optional[botcall.AudioOutput] = None
        speaking: Optional[asyncio.Task] = None
        in_speech, quiet = False, 0.0
        preroll: collections.deque[bytes] = collections.deque(maxlen=15)  # 300 ms

        async def say(text: str) -> None:
            nonlocal speaker
            pcm, rate = await asyncio.to_thread(tts, text)
            if speaker is None or speaker.sample_rate != rate:
                speaker = call.audio_output(sample_rate=rate)
            step = rate // 50 * 2
            for i in range(0, len(pcm), step):
                await speaker.write(pcm[i : i + step])

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
                    if llm:
                        reply = await asyncio.to_thread(ask_llm, llm, heard) if heard else None
                    else:
                        reply = answer(heard)
                    if reply:
                        print(f"say: {reply}", flush=True)
                        speaking = asyncio.create_task(say(reply))
        except botcall.CallEnded:
            pass
    print(f"call {call.id} ended: {call.end_reason}", flush=True)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--daemon", default="http://127.0.0.1:8080")
    p.add_argument("--key", required=True)
    p.add_argument("--id")
    p.add_argument("--name", default="Python voice bot")
    p.add_argument("--listed", action="store_true")
    p.add_argument("--llm", help="an OpenAI-compatible server's base URL")
    a = p.parse_args()
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
        t = asyncio.create_task(talk(call, a.llm))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
