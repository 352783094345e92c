"""Prometheus metrics of one mirror, in its own ``CollectorRegistry`` (several mirrors in one process never
collide). Labels are bounded: the method (known ones, else ``other``) and the status; never a path or a
repo name, so a scanner cannot grow the label set and ``/metrics`` reveals nothing about the content."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest

METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}


class Telemetry:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, max_streams: int, max_connections: int) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._requests = Counter("smm_mirror_requests", "Requests answered, by method and status.",
                                 ["method", "status"], registry=r)
        self._bytes = Counter("smm_mirror_sent_bytes", "File body bytes handed to the kernel.", registry=r)
        self._streams = Gauge("smm_mirror_streams_active", "File downloads in progress.", registry=r)
        self._refused = Counter("smm_mirror_refused", "Requests refused before routing, by reason.",
                                ["reason"], registry=r)
        Gauge("smm_mirror_streams_max", "The bound on concurrent file downloads (--max-streams).",
              registry=r).set(max_streams)
        Gauge("smm_mirror_connections_max", "The bound on open connections (--max-connections).",
              registry=r).set(max_connections)
        self._connections = Gauge("smm_mirror_connections_open", "Open client connections.", registry=r)

    def track_connections(self, count: Callable[[], int]) -> None:
        self._connections.set_function(lambda: float(count()))

    def request(self, method: str, status: int) -> None:
        self._requests.labels(method if method in METHODS else "other", str(status)).inc()

    def bytes_sent(self, n: int) -> None:
        self._bytes.inc(n)

    def streams(self, active: int) -> None:
        self._streams.set(active)

    def stream_rejected(self) -> None:
        self._refused.labels("streams").inc()

    def refused(self, status: int) -> None:
        """A connection answered by the protocol layer (limits, unparseable requests)."""
        reason = {503: "connections", 414: "request_line", 431: "headers"}.get(status, "malformed")
        self._refused.labels(reason).inc()
        self._requests.labels("other", str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
