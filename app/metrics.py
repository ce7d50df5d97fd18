"""Prometheus metrics of the HTTP requests, on prometheus_client, and ``GET /metrics``.

The names and labels are those of prometheus-fastapi-instrumentator, which this replaced: its
middleware resolved each request's route template by matching the path against every route of the
app before the request ran (about 6 % of a list request's time with this many routes), and built a
Request and a Response object per request. Here the template is read after the request from
``scope["route"]``, which the router has set, and nothing else is built.

* ``http_requests_total{handler, method, status}``: ``status`` grouped as ``2xx`` .. ``5xx``;
  ``handler`` is the route template (``/api/v1/enterprises/{enterprise_id}``), ``none`` when no route
  matched, and a method outside the standard ones is ``other`` (so clients cannot grow the label set);
* ``http_request_duration_seconds{handler, method}`` (few buckets) and
  ``http_request_duration_highr_seconds`` (many buckets, no labels);
* ``http_response_size_bytes{handler}`` from the response's Content-Length.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` with several workers), the values live in that
directory and ``/metrics`` adds up every worker's.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXCLUDED = frozenset({"/metrics"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is "other"
_HIGHR_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60)


class RequestMetrics:
    """Pure ASGI middleware counting and timing every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("http_requests_total", "Total number of requests by method, status and handler.",
                                ("method", "status", "handler"), registry=registry)
        self.latency = Histogram("http_request_duration_seconds", "Latency with only few buckets by handler.",
                                 ("method", "handler"), buckets=(0.1, 0.5, 1), registry=registry)
        self.latency_highr = Histogram("http_request_duration_highr_seconds",
                                       "Latency with many buckets but no API specific labels.",
                                       buckets=_HIGHR_BUCKETS, registry=registry)
        self.response_size = Histogram("http_response_size_bytes", "Content length of outgoing responses by handler.",
                                       ("handler",), buckets=(1_000, 10_000, 100_000, 1_000_000), registry=registry)
        # (method, status // 100, route template) -> its three labelled series; bounded by the routes
        self._series: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, size = 500, 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"content-length":
                        size = int(value)
                        break
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            handler = getattr(route, "path", None) or "none"
            if handler not in EXCLUDED:
                elapsed = time.perf_counter() - start
                method = scope["method"] if scope["method"] in METHODS else "other"
                key = (method, status // 100, handler)
                series = self._series.get(key)
                if series is None:  # labels() checks and locks on every call: look each series up once
                    series = self._series[key] = (self.requests.labels(method, f"{status // 100}xx", handler),
                                                  self.latency.labels(method, handler),
                                                  self.response_size.labels(handler))
                series[0].inc()
                series[1].observe(elapsed)
                self.latency_highr.observe(elapsed)
                series[2].observe(size)


def registry() -> CollectorRegistry:
    """One registry per app (tests create several apps in one process), with the process collectors."""
    reg = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=reg)
    return reg


def endpoint(app_registry: CollectorRegistry) -> Any:
    async def metrics(request: Request) -> Response:
        reg = app_registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
        return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

    return metrics
