"""Optional OpenTelemetry tracing: spans for resolve, verify, load and infer, when the user asks for them.

Install the ``otel`` extra (``opentelemetry-api``, ``-sdk``, the OTLP/HTTP exporter) and configure it with the
standard variables. Tracing is on when either

* the application already set a tracer provider (``opentelemetry.trace.set_tracer_provider``): smm's spans
  go to it, nested under the application's own; or
* ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set: smm sets up the SDK's provider itself, with a batch span
  processor and that exporter (which reads its own ``OTEL_EXPORTER_OTLP_*`` settings; the resource reads
  ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``).

``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turns it off. Otherwise nothing happens and
**nothing is imported**: this module is stdlib-only, and opentelemetry is imported only once tracing is
configured (or already imported by the application). With the variables set but the packages missing, one
warning says which extra to install; loading and inference go on untraced.

Span names: ``smm.load_model`` (with ``smm.resolve``, ``smm.verify`` and ``smm.load`` inside it) and
``smm.infer`` (each model call: every micro-batch in the service). Attributes are ``smm.*``: the model, its
source, commit, backend, device and the number of texts; never the texts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

from ._version import __version__

log = logging.getLogger(__name__)

TRACER_NAME = "smart_model_manager"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_state: dict[str, Any] = {"checked": False, "tracer": None}
_lock = threading.Lock()


def _configured(env: dict[str, str]) -> bool:
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return exporters not in ("", "none") or any(env.get(k) for k in _ENDPOINTS)


def _disabled(env: dict[str, str]) -> bool:
    return (env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
            or env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none")


def _sdk_provider(env: dict[str, str]) -> Any:
    """The SDK's TracerProvider with the exporters OTEL_TRACES_EXPORTER names (default otlp), made global."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as err:
        log.warning("OTEL_* tracing is configured but the OpenTelemetry SDK is not installed (%s); "
                    "pip install 'smart-model-manager[otel]'. Continuing without traces.", err)
        return None
    provider = TracerProvider(resource=Resource.create())
    for name in (n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")):
        if name == "console":  # on stderr: stdout is data (smm analyze's JSON lines)
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError as err:
                log.warning("OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http (%s); "
                            "pip install 'smart-model-manager[otel]'", err)
                continue
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported by smart-model-manager (otlp, console, none)", name)
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider()


def _setup() -> Any:
    from .settings import Settings

    env = dict(Settings.from_env().otel)
    if _disabled(env):
        return None
    configured = _configured(env)
    if not configured and "opentelemetry" not in sys.modules:
        return None  # not asked for, and the application does not use OpenTelemetry: import nothing
    if importlib.util.find_spec("opentelemetry") is None:
        log.warning("OTEL_* tracing is configured but opentelemetry is not installed; "
                    "pip install 'smart-model-manager[otel]'. Continuing without traces.")
        return None
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):  # nobody set one
        if not configured:
            return None
        provider = _sdk_provider(env)
        if provider is None:
            return None
    return provider.get_tracer(TRACER_NAME, __version__)


def tracer() -> Any:
    """The tracer smm's spans go to, or None when tracing is off (decided once per process)."""
    if not _state["checked"]:
        with _lock:
            if not _state["checked"]:
                _state["tracer"] = _setup()
                _state["checked"] = True
    return _state["tracer"]


def reset() -> None:
    """Decide again on the next span (tests, or an application that configures tracing after first use)."""
    with _lock:
        _state["checked"], _state["tracer"] = False, None


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` when tracing is on (exceptions recorded, status ERROR), else nothing at all.
    ``None`` attributes are left out. Yields the span (or None) so callers can add attributes."""
    t = tracer()
    if t is None:
        yield None
        return
    attrs = {f"smm.{k}": v for k, v in attributes.items() if v is not None}
    with t.start_as_current_span(name, attributes=attrs) as s:
        yield s


def set_attributes(s: Any, **attributes: Any) -> None:
    """Add ``smm.*`` attributes to a span from :func:`span` (a no-op for None)."""
    if s is not None:
        s.set_attributes({f"smm.{k}": v for k, v in attributes.items() if v is not None})


__all__ = ["TRACER_NAME", "reset", "set_attributes", "span", "tracer"]
