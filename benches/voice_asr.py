#!/usr/bin/env python3
"""Which espeak-ng voice pocketsphinx understands: the share of each test
sentence's words it transcribes, per voice, on the second hearing (the
decoder's cepstral mean adapted, as in a call). Chose voice_bot.py's VOICE.

    /tmp/botcall-venv/bin/python benches/voice_asr.py [VOICE ...]

Needs espeak-ng and sox (tests/setup) and pocketsphinx (the test venv).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from pocketsphinx import Decoder

SENTENCES = [
    "what time is it",
    "hi there how are you",
    "nice to meet you",
    "what is the weather like",
    "the weather is nice today",
    "repeat after me good morning",
]
VOICES = ["en", "en-us", "en-us+f3", "en-us+klatt", "en-us+klatt4"]


def speech(text: str, voice: str, tmp: Path) -> bytes:
    """PCM16 mono 16 kHz of `text`, with 0.5 s of quiet around it."""
    wav, raw = tmp / "s.wav", tmp / "s.raw"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(wav), text], check=True)
    subprocess.run(
        ["sox", str(wav), "-r", "16000", "-b", "16", "-e", "signed", "-c", "1", str(raw),
         "pad", "0.5", "0.5"],
        check=True,
    )  # fmt: skip
    return raw.read_bytes()


def main() -> None:
    voices = sys.argv[1:] or VOICES
    with tempfile.TemporaryDirectory() as d:
        for voice in voices:
            score, heard = 0.0, []
            for text in SENTENCES:
                pcm = speech(text, voice, Path(d))
                dec = Decoder(samprate=16000, logfn="/dev/null")
                for _ in range(2):
                    dec.start_utt()
                    dec.process_raw(pcm, False, False)
                    dec.end_utt()
                hyp = dec.hyp().hypstr if dec.hyp() else ""
                words = text.split()
                score += sum(w in hyp.split() for w in words) / len(words)
                heard.append(hyp)
            print(f"{voice:14} {score / len(SENTENCES):.2f}  {heard}", flush=True)


if __name__ == "__main__":
    main()
