"""Per-request deadlines and client disconnects: the two reasons to drop queued work.

Deadline convention: the service's default (``request_timeout_s``) counts from the moment the service
has read the request's body and queues its texts (a slow upload does not occupy the model, so it does
not count); a client may *lower* it with ``X-Request-Timeout: <seconds>`` (a decimal number > 0, e.g.
``1.5``), never raise it. A malformed value is a 400: a client that asked for a deadline must
not silently get another one.
"""

from __future__ import annotations

import math

from starlette.types import Receive

HEADER = "x-request-timeout"


class BadTimeout(ValueError):
    """``X-Request-Timeout`` is not a number of seconds > 0."""


def seconds_allowed(header: str | None, default_s: float | None) -> float | None:
    """Seconds this request may wait for and in the model, or None when it has no deadline."""
    if header is None:
        return default_s
    try:
        asked = float(header.strip())
    except ValueError:
        raise BadTimeout(f"X-Request-Timeout: {header[:40]!r} is not a number of seconds") from None
    if not math.isfinite(asked) or asked <= 0:
        raise BadTimeout(f"X-Request-Timeout: {header[:40]!r} must be a number of seconds > 0")
    return asked if default_s is None else min(default_s, asked)


async def disconnected(receive: Receive) -> None:
    """Return when the client has disconnected. Only after the body has been read: the server then
    answers ``receive`` only with ``http.disconnect`` (when the client closes the connection or the
    response is complete), so this waits without polling."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


__all__ = ["HEADER", "BadTimeout", "disconnected", "seconds_allowed"]
