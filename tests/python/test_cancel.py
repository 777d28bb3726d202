"""Cancelling what a Python task awaits cleans up on the Rust side: a
cancelled `next_call()` does not take the next call, cancelled reads of mic
frames lose nothing and leave no Rust future running, and `close()` wakes a
task waiting for a call. Real daemon, real aiortc caller (test_botcall.py).
"""

from __future__ import annotations

import asyncio

import botcall
import pytest
from botcall import _native
from test_botcall import caller, daemon, key, result, run, speech_wav  # noqa: F401


async def settle(baseline: int) -> int:
    """Waits (long limit) until the Rust futures started for Python are back
    to `baseline`; returns the count."""
    for _ in range(600):
        n = _native.running_tasks()
        if n <= baseline:
            return n
        await asyncio.sleep(0.05)
    return _native.running_tasks()


def test_a_cancelled_wait_for_a_call_does_not_take_the_next_call(daemon, key, speech_wav):  # noqa: F811
    async def main():
        base = _native.running_tasks()
        bot = await botcall.Bot.connect(daemon.url, key=key)
        # Many waits given up: by cancel() and by wait_for's timeout.
        for _ in range(50):
            t = asyncio.create_task(bot.next_call())
            await asyncio.sleep(0.001)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        for _ in range(5):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(bot.next_call(), 0.05)
        assert await settle(base) == base, "cancelled Rust futures still running"
        # The next call goes to the one task that still waits, and is answered.
        served = asyncio.create_task(echo(bot.next_call()))
        rc, out, err = await caller(daemon, bot.agent_id, speech_wav)
        assert rc == 0, err
        call = await asyncio.wait_for(served, 30)
        assert result(out)["correlation"] > 0.5
        await bot.close()
        assert await settle(base) == base
        return call

    call = run(main())
    assert call.end_reason in ("remote_hangup", "local", "shutdown"), call.end_reason


def test_cancelled_reads_of_mic_frames_leave_nothing_behind(daemon, key, speech_wav):  # noqa: F811
    async def main():
        base = _native.running_tasks()
        bot = await botcall.Bot.connect(daemon.url, key=key)

        async def serve():
            call = await bot.next_call()
            await call.answer()
            mic = call.audio_input(sample_rate=16000)
            cancelled = 0
            for _ in range(30):
                t = asyncio.create_task(mic.__anext__())
                await asyncio.sleep(0.005)
                if t.cancel():
                    cancelled += 1
                try:
                    await t
                except asyncio.CancelledError:
                    pass
            frames = 0
            speaker = call.audio_output(sample_rate=16000)
            async for frame in mic:  # reading goes on, to the end of the call
                assert len(frame.data) == 640
                frames += 1
                try:
                    await speaker.write(frame.data)
                except botcall.CallEnded:
                    pass
            return call, cancelled, frames

        served = asyncio.create_task(serve())
        rc, out, err = await caller(daemon, bot.agent_id, speech_wav)
        assert rc == 0, err
        call, cancelled, frames = await asyncio.wait_for(served, 30)
        await bot.close()
        left = await settle(base)
        return call, cancelled, frames, left, base

    call, cancelled, frames, left, base = run(main())
    assert cancelled > 0
    assert frames > 50
    assert left == base, f"{left - base} Rust futures left running"
    assert call.end_reason == "remote_hangup"


def test_close_wakes_a_task_waiting_for_a_call(daemon, key):  # noqa: F811
    async def main():
        base = _native.running_tasks()
        bot = await botcall.Bot.connect(daemon.url, key=key)
        waiting = asyncio.create_task(bot.next_call())
        looping = asyncio.create_task(anext_call(bot))
        await asyncio.sleep(0.1)
        await bot.close()
        with pytest.raises(botcall.BotClosed):
            await asyncio.wait_for(waiting, 30)
        assert await asyncio.wait_for(looping, 30) is None  # calls() just ends
        assert not bot.online
        with pytest.raises(botcall.BotClosed):
            await bot.next_call()
        assert await settle(base) == base

    run(main())


async def echo(next_call) -> botcall.Call:
    call = await next_call
    await call.answer()
    mic, speaker = call.audio_input(sample_rate=16000), call.audio_output(sample_rate=16000)
    try:
        async for frame in mic:
            await speaker.write(frame.data)
    except botcall.CallEnded:
        pass
    return call


async def anext_call(bot: botcall.Bot):
    async for call in bot.calls():
        return call
    return None
