"""Glue for the native module: completes asyncio futures from the SDK thread."""

from __future__ import annotations

import asyncio
from typing import Any


def resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """Sets a future's result or exception (runs on the loop's thread)."""
    if fut.done():  # cancelled meanwhile
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
