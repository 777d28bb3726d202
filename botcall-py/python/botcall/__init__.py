"""BotCall bots in Python: asyncio bindings to the Rust bot SDK.

Registration, presence and reconnect, attestation checks, WebRTC, Opus and
resampling all run in Rust (`botcall._native`, on one background thread,
without the GIL). See docs/python.md.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Optional

from . import _native
from .errors import (
    AuthError,
    BotcallError,
    BotClosed,
    CallEnded,
    CallRefused,
    ConfigError,
    DaemonUnavailable,
)

__all__ = [
    "AudioFrame",
    "AudioInput",
    "AudioOutput",
    "AuthError",
    "Bot",
    "BotClosed",
    "BotcallError",
    "Call",
    "CallEnded",
    "CallRefused",
    "ConfigError",
    "DaemonUnavailable",
]

#: Bytes per PCM16 sample.
_SAMPLE = 2


class AudioFrame:
    """20 ms of mono PCM16 (little-endian) audio."""

    __slots__ = ("data", "sample_rate")

    def __init__(self, data: bytes, sample_rate: int) -> None:
        self.data = data
        self.sample_rate = sample_rate

    @property
    def samples_per_channel(self) -> int:
        return len(self.data) // _SAMPLE

    @property
    def num_channels(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"AudioFrame({self.samples_per_channel} samples @ {self.sample_rate} Hz)"


class AudioInput:
    """What the caller says: an async iterator of 20 ms `AudioFrame`s."""

    def __init__(self, native: Any, sample_rate: int) -> None:
        self._native = native
        self.sample_rate = sample_rate

    def __aiter__(self) -> AudioInput:
        return self

    async def __anext__(self) -> AudioFrame:
        # Cancelling this await stops the read in Rust (the frame being
        # handed over at that instant, if any, is dropped).
        data = await self._native.next()
        if data is None:
            raise StopAsyncIteration
        return AudioFrame(data, self.sample_rate)


class AudioOutput:
    """What the bot says: PCM16 mono at `sample_rate`, in chunks of any length."""

    def __init__(self, native: Any, sample_rate: int) -> None:
        self._native = native
        self.sample_rate = sample_rate

    async def write(self, pcm: Any) -> None:
        """Queues `pcm` (bytes-like PCM16); waits while ~200 ms are queued.

        Raises `CallEnded` once the call is over.
        """
        await self._native.write(bytes(pcm))

    def clear(self) -> None:
        """Drops the audio queued and not yet sent (barge-in)."""
        self._native.clear()


class Call:
    """A verified call. It rings until answered (`async with call:`, or
    `await call.answer()`) or turned down (`await call.reject(reason)`);
    `async with call:` hangs up on exit. `await call.hangup()` on a ringing
    call rejects it as `declined`; dropping it undecided rejects it as `busy`.
    """

    def __init__(self, incoming: Any) -> None:
        self._incoming = incoming
        self._native: Any = None
        self._rejected: Optional[str] = None

    @property
    def id(self) -> str:
        return self._incoming.id

    @property
    def caller(self) -> dict[str, Any]:
        """The verified human attestation: session, issuer, hv, fingerprint, times."""
        return self._incoming.caller()

    @property
    def answered(self) -> bool:
        return self._native is not None

    async def answer(self) -> None:
        """Answers the call (once; later calls do nothing). Media connects in
        the background. Raises `CallEnded` if the caller went away meanwhile."""
        if self._native is None:
            if self._rejected is not None:
                raise BotcallError("the call was rejected")
            self._native = await self._incoming.accept()

    async def reject(self, reason: str = "declined") -> None:
        """Turns the ringing call down; the caller gets `reject` with `reason`
        (1..64 bytes, e.g. `busy`, `not_now`). Raises `BotcallError` once the
        call is answered (hang up instead), `ConfigError` for a bad reason."""
        if self._native is not None:
            raise BotcallError("the call is answered already: hang up instead")
        if not isinstance(reason, str):
            raise ConfigError(f"reason must be a str, not {reason!r}")
        await self._incoming.reject(reason)
        self._rejected = reason

    def _call(self) -> Any:
        if self._native is None:
            raise BotcallError(
                "the call rings: answer it first (`async with call:` or `await call.answer()`)"
            )
        return self._native

    @property
    def end_reason(self) -> Optional[str]:
        """Why the call ended (`remote_hangup`, `local`, …; `rejected` after
        `reject`), `None` while it rings or goes on."""
        if self._rejected is not None:
            return "rejected"
        if self._native is None:
            return None
        r = self._native.end_reason()
        return None if r is None else r[0]

    @property
    def connected(self) -> bool:
        return self._native is not None and self._native.is_connected()

    def stats(self) -> dict[str, Any]:
        return self._call().stats()

    def audio_input(self, sample_rate: int = 48000) -> AudioInput:
        """The caller's audio, resampled to `sample_rate` (8000..48000 Hz)."""
        _check_rate(sample_rate)
        return AudioInput(self._call().audio_input(sample_rate), sample_rate)

    def audio_output(self, sample_rate: int = 48000) -> AudioOutput:
        """A sink for the bot's audio at `sample_rate` (8000..48000 Hz)."""
        _check_rate(sample_rate)
        return AudioOutput(self._call().audio_output(sample_rate), sample_rate)

    async def recv_opus(self) -> bytes:
        """The next raw Opus packet (48 kHz). Raises `CallEnded` at the end."""
        return await self._call().recv_opus()

    async def send_opus(self, packet: bytes) -> None:
        """Queues one raw 20 ms Opus packet."""
        await self._call().send_opus(bytes(packet))

    async def hangup(self) -> None:
        """Hangs up an answered call; rejects (`declined`) one that rings."""
        if self._native is None:
            if self._rejected is None:
                await self.reject("declined")
            return
        await self._native.hangup()

    async def wait_ended(self) -> str:
        """Waits for the end of the answered call; returns the end code."""
        return await self._call().ended()

    async def __aenter__(self) -> Call:
        await self.answer()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hangup()

    def __repr__(self) -> str:
        return f"Call({self.id!r}, end_reason={self.end_reason!r})"


def _check_rate(rate: int) -> None:
    if not isinstance(rate, int) or not 8000 <= rate <= 48000:
        raise ConfigError(f"sample_rate must be an int in 8000..48000, not {rate!r}")


class Bot:
    """A registered bot. Create with `await Bot.connect(...)`.

    The SDK keeps it online: after a network loss or a daemon restart it
    reconnects and registers again by itself.
    """

    def __init__(self, native: Any) -> None:
        self._native = native
        self._closed = False

    @classmethod
    async def connect(
        cls,
        daemon: str,
        *,
        key: str,
        agent_id: Optional[str] = None,
        name: Optional[str] = None,
        listed: Optional[bool] = None,
        require_human: bool = False,
        max_calls: int = 1,
        media_timeout: Optional[float] = None,
        ca_file: Optional[str] = None,
    ) -> Bot:
        """Registers with the daemon at `daemon` and brings the bot online.

        `key` is a JWK file (`botcalld keygen`). Without `agent_id` the id is
        the key's thumbprint (open registration). `require_human=True` takes
        only calls whose attestation says a real human check passed.

        Raises `AuthError`, `DaemonUnavailable` or `ConfigError`.
        """
        if not isinstance(daemon, str) or not daemon:
            raise ConfigError("daemon must be a URL such as http://127.0.0.1:8080")
        if not isinstance(max_calls, int) or not 1 <= max_calls <= 4:
            raise ConfigError(f"max_calls must be 1..4, not {max_calls!r}")
        native = await _native.connect(
            daemon,
            str(key),
            agent_id,
            name,
            listed,
            require_human,
            max_calls,
            media_timeout,
            ca_file,
        )
        return cls(native)

    @property
    def agent_id(self) -> str:
        return self._native.agent_id

    @property
    def online(self) -> bool:
        return bool(self._native.status()["online"])

    def status(self) -> dict[str, Any]:
        """`online`, `sessions`, `connect_attempts`, `refused_calls`, `last_error`."""
        return self._native.status()

    async def next_call(self) -> Call:
        """The next call whose attestation verified, ringing: answer it
        (`async with call:`) or `await call.reject(reason)`.

        Cancelling the waiting task (or an `asyncio.wait_for` timeout) stops
        the wait in Rust too: no call is taken for it. Raises `BotClosed`
        once `close()` was called, also in a task already waiting.
        """
        if self._closed:
            raise BotClosed("the bot was shut down")
        return Call(await self._native.next_call())

    async def calls(self) -> AsyncIterator[Call]:
        """Every verified call, ringing, until the bot is closed."""
        while not self._closed:
            try:
                yield await self.next_call()
            except BotClosed:
                return

    async def close(self) -> None:
        """Hangs up every call and goes offline. A task waiting in `calls()`
        ends its loop; one waiting in `next_call()` gets `BotClosed`."""
        if self._closed:
            return
        self._closed = True
        await self._native.shutdown()

    async def __aenter__(self) -> Bot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
