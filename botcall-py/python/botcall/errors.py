"""Typed exceptions of the `botcall` package."""

from __future__ import annotations

from typing import Optional


class BotcallError(Exception):
    """Base class of every error the package raises."""


class ConfigError(BotcallError, ValueError):
    """Bad arguments: URL, agent id, key file, sample rate, options."""


class AuthError(BotcallError):
    """The key is unusable or the daemon refused it (401/403, `unauthorized`)."""


class DaemonUnavailable(BotcallError):
    """The daemon could not be reached (connection refused, timeout, 5xx)."""


class CallEnded(BotcallError):
    """The call is over; `reason` is the SDK's end code (`remote_hangup`, …)."""

    reason: Optional[str] = None
    detail: Optional[str] = None


class CallRefused(BotcallError):
    """An incoming call failed its checks (never raised by `Bot.calls()`)."""


class BotClosed(BotcallError):
    """The bot was shut down."""
