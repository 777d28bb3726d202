"""`call.reject(reason)`: a verified call rings until the bot answers or
turns it down; the caller (aiortc, tests/aiortc_peer.py) gets `reject` with
the bot's reason. Real daemon, real caller.
"""

from __future__ import annotations

import asyncio

import botcall
import pytest
from test_botcall import caller, daemon, key, result, run, speech_wav  # noqa: F401
from test_cancel import echo


def test_a_ringing_call_is_rejected_with_the_bots_reason(daemon, key, speech_wav):  # noqa: F811
    async def main():
        bot = await botcall.Bot.connect(daemon.url, key=key)

        async def serve():
            call = await bot.next_call()
            assert not call.answered and call.end_reason is None
            assert call.caller["session"] and call.caller["call_id"] == call.id
            with pytest.raises(botcall.BotcallError, match="answer it first"):
                call.audio_input(sample_rate=16000)
            for bad in ("", "x" * 65):  # the call still rings after these
                with pytest.raises(botcall.ConfigError):
                    await call.reject(bad)
            await call.reject("not_now")
            with pytest.raises(botcall.BotcallError, match="already answered or rejected"):
                await call.reject("twice")
            with pytest.raises(botcall.BotcallError, match="rejected"):
                await call.answer()
            return call

        served = asyncio.create_task(serve())
        rc, _, err = await caller(daemon, bot.agent_id, speech_wav)
        call = await asyncio.wait_for(served, 30)

        # The bot goes on: the next call is answered (and cannot be rejected).
        async def answer_one():
            call = await bot.next_call()

            async def ready():
                call2 = call
                await call2.answer()
                with pytest.raises(botcall.BotcallError, match="hang up instead"):
                    await call2.reject("late")
                return call2

            return await echo(ready())

        answered = asyncio.create_task(answer_one())
        rc2, out2, err2 = await caller(daemon, bot.agent_id, speech_wav)
        await asyncio.wait_for(answered, 30)
        await bot.close()
        return call, rc, err, rc2, out2, err2

    call, rc, err, rc2, out2, err2 = run(main())
    assert rc != 0 and "'type': 'reject'" in err and "'reason': 'not_now'" in err, err
    assert call.end_reason == "rejected"
    assert rc2 == 0, err2
    assert result(out2)["correlation"] > 0.5


def test_a_call_left_ringing_and_dropped_is_declined(daemon, key, speech_wav):  # noqa: F811
    async def main():
        bot = await botcall.Bot.connect(daemon.url, key=key)

        async def serve():
            call = await bot.next_call()
            await call.hangup()  # never answered: turned down
            return call

        served = asyncio.create_task(serve())
        rc, _, err = await caller(daemon, bot.agent_id, speech_wav)
        call = await asyncio.wait_for(served, 30)
        await bot.close()
        return call, rc, err

    call, rc, err = run(main())
    assert rc != 0 and "'reason': 'declined'" in err, err
    assert call.end_reason == "rejected"
