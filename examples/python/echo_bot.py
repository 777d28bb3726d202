#!/usr/bin/env python3
"""A BotCall bot in Python that says back what it hears.

Every 20 ms frame of the caller's audio (PCM16 at 16 kHz, as speech models
take it) is written back to the call (resampled and Opus-encoded in Rust).

    python examples/python/echo_bot.py --daemon http://127.0.0.1:8080 --key bot.jwk

Without --id the agent id is the key's thumbprint (open registration).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import botcall


async def talk(call: botcall.Call) -> None:
    print(f"call {call.id} from {call.caller['session']} (hv={call.caller['hv']})", flush=True)
    async with call:
        mic = call.audio_input(sample_rate=16000)
        speaker = call.audio_output(sample_rate=16000)
        frames = 0
        try:
            async for frame in mic:
                frames += 1
                await speaker.write(frame.data)
        except botcall.CallEnded:
            pass
    print(f"call {call.id} ended: {call.end_reason} after {frames} frames", flush=True)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--daemon", default="http://127.0.0.1:8080")
    p.add_argument("--key", required=True)
    p.add_argument("--id")
    p.add_argument("--name", default="Python echo")
    p.add_argument("--listed", action="store_true")
    p.add_argument("--require-human", action="store_true")
    a = p.parse_args()
    try:
        bot = await botcall.Bot.connect(
            a.daemon,
            key=a.key,
            agent_id=a.id,
            name=a.name,
            listed=a.listed,
            require_human=a.require_human,
        )
    except botcall.BotcallError as e:
        print(f"echo_bot: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"online as {bot.agent_id}", flush=True)
    tasks = set()
    async for call in bot.calls():
        t = asyncio.create_task(talk(call))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
