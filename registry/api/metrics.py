"""Prometheus metrics: calls, latencies and errors by method and code; business counters.

Served on a separate port (``registry serve --metrics-port``) so the API port
never exposes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from registry.context import RegistryContext

REGISTRY = CollectorRegistry()
CALLS = Counter("clearance_rpc_calls_total", "RPCs handled", ["method", "code"], registry=REGISTRY)
LATENCY = Histogram(
    "clearance_rpc_latency_seconds",
    "RPC latency",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)


class _BusinessCounters(Collector):
    def __init__(self) -> None:
        self.contexts: list[RegistryContext] = []

    def collect(self) -> Any:
        family = CounterMetricFamily(
            "clearance_events", "Registry events (issuances, revocations, ...)", labels=["event"]
        )
        totals: dict[str, int] = {}
        for ctx in self.contexts:
            for name, value in ctx.counters.values.items():
                totals[name] = totals.get(name, 0) + value
        for name, value in sorted(totals.items()):
            family.add_metric([name], value)
        yield family


_BUSINESS = _BusinessCounters()
REGISTRY.register(_BUSINESS)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every unary call (streams are counted when they end)."""

    def __init__(self, ctx: RegistryContext) -> None:
        _BUSINESS.contexts.append(ctx)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        behavior = handler.unary_unary

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return behavior(request, context)
            except Exception:
                status = getattr(context, "code", lambda: None)()
                code = status.name if status is not None else "UNKNOWN"
                raise
            finally:
                CALLS.labels(method, code).inc()
                LATENCY.labels(method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def forget(ctx: RegistryContext) -> None:
    """Stop counting a stopped registry's events."""
    _BUSINESS.contexts[:] = [c for c in _BUSINESS.contexts if c is not ctx]


def start_metrics_server(port: int) -> None:
    start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
