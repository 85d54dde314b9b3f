"""Prometheus metrics: calls, latencies and errors by method and code; business counters.

Served on a separate port (``registry serve --metrics-port``) so the API port
never exposes them.
"""

from __future__ import annotations

from typing import Any

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


def track(ctx: RegistryContext) -> None:
    """Count a started registry's business events."""
    _BUSINESS.contexts.append(ctx)


def observe_call(method: str, code: str, seconds: float) -> None:
    """Count and time one unary call (the serving interceptor calls this as each call ends)."""
    CALLS.labels(method, code).inc()
    LATENCY.labels(method).observe(seconds)


def forget(ctx: RegistryContext) -> None:
    """Stop counting a stopped registry's events."""
    _BUSINESS.contexts[:] = [c for c in _BUSINESS.contexts if c is not ctx]


def start_metrics_server(port: int) -> None:
    start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
