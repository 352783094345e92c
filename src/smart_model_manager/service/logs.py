"""Service logging: JSON lines when stderr is not a TTY, a request id on every line, never the text.

The library installs no handlers; ``configure_logging`` is called by the edge that runs the
service (``smm serve sentiment``, ``services/enhanced_sentiment_ml_analysis.py``). The request id
travels in a ``ContextVar`` set by the app's middleware, so any log line emitted while handling a
request (including from the batcher callbacks) carries it.

Log only counts, lengths, routes and timings: request texts can hold unpublished news.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("smm_request_id", default=None)

# What we accept from X-Request-ID; anything else is replaced (no log injection, bounded size).
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


def request_id_from(header_value: str | None) -> str:
    """The caller's ``X-Request-ID`` if it is sane, else a fresh random id."""
    if header_value and _REQUEST_ID_RE.match(header_value):
        return header_value
    return uuid.uuid4().hex[:16]


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def logging_config(level: int | str = logging.INFO, *, json_lines: bool | None = None,
                   stream: str = "ext://sys.stderr") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one root handler, uvicorn's loggers propagating to it.

    Also handed to uvicorn as ``log_config`` so every ``--workers`` process configures the same way.
    ``json_lines=None`` picks JSON when stderr is not a TTY (containers, files, pipes).
    """
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    fmt = "json" if json_lines else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}, "text": {"()": f"{__name__}.TextFormatter"}},
        "handlers": {"smm-service": {"class": "logging.StreamHandler", "stream": stream, "formatter": fmt,
                                     "filters": ["request_id"]}},
        "root": {"handlers": ["smm-service"], "level": level},
        # uvicorn's own loggers: no handlers of their own, through ours; its access log is replaced
        # by the app's (which has the request id and no query strings).
        "loggers": {name: {"handlers": [], "propagate": True, "level": level}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def configure_logging(level: int | str = logging.INFO, *, json_lines: bool | None = None) -> None:
    """Apply :func:`logging_config` in this process."""
    logging.config.dictConfig(logging_config(level, json_lines=json_lines))
