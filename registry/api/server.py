"""Building and running the registry's gRPC server.

TLS by default (with the material ``registry init`` created); plaintext only
with ``insecure=True`` and only on a loopback address. Health checking
(grpc.health.v1) and server reflection are on, so grpcurl and other
standard tools work against it. Prometheus metrics on an optional port.
SIGTERM/SIGINT drain in-flight calls before exit.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from clearance.errors import InvalidArgumentError
from clearance.listen_address import check_listen_address as check_listen_address
from clearance.tls import TlsFiles
from clearance.v1 import registry_pb2, registry_pb2_grpc
from registry.api.auth import Authenticator, AuthInterceptor
from registry.api.metrics import MetricsInterceptor, start_metrics_server
from registry.api.servicers.assessments import AssessmentServicer
from registry.api.servicers.audit import AuditServicer
from registry.api.servicers.credentials import CredentialServicer
from registry.api.servicers.enrollment import EnrollmentServicer
from registry.api.servicers.organizations import OrganizationServicer
from registry.api.servicers.personnel import PersonnelServicer
from registry.api.servicers.publication import PublicationServicer
from registry.api.servicers.staff import StaffServicer
from registry.config import RegistryConfig
from registry.context import RegistryContext, system_clock
from registry.publication import publisher
from registry.store import schema
from registry.store.db import Database
from registry.store.keyring import KeyRing

log = logging.getLogger("clearance.registry")

SERVICE_NAMES = tuple(
    registry_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in (
        "OrganizationService",
        "StaffService",
        "PersonnelService",
        "AssessmentService",
        "CredentialService",
        "PublicationService",
        "EnrollmentService",
        "AuditService",
        "FederationService",
    )
)


@dataclass
class RunningRegistry:
    server: grpc.Server
    port: int
    ctx: RegistryContext
    hub: publisher.PublicationHub
    health: health.HealthServicer
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    executor: futures.ThreadPoolExecutor | None = None

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls, let in-flight ones finish for ``grace`` seconds, then close."""
        self.health.enter_graceful_shutdown()
        self.stop_event.set()
        self.hub.stop()
        from registry.api.metrics import forget
        from registry.signing import close_pools

        close_pools(self.ctx)
        forget(self.ctx)
        self.server.stop(grace).wait(grace + 1)
        if self.executor is not None:
            self.executor.shutdown(wait=False)  # gRPC does not own the pool it was given
        _stop_federation(self.ctx)
        for thread in self.threads:
            thread.join(timeout=2)
        self.ctx.close()  # the group-commit writer too: nothing of this server touches the database after


def open_context(
    directory: Path, *, clock: Callable[[], int] = system_clock, database_url: str | None = None
) -> RegistryContext:
    config = RegistryConfig.load(directory)
    if database_url:
        from dataclasses import replace

        config = replace(config, database_url=database_url)
    db = Database.connect(config.database_url)
    try:
        schema.check_current(db.engine)
        keys = KeyRing.load(config.keys_dir)
    except BaseException:
        db.dispose()  # a refused start leaves no connection open behind it
        raise
    return RegistryContext(config=config, db=db, keys=keys, clock=clock)


def start(
    ctx: RegistryContext,
    listen: str,
    *,
    insecure: bool = False,
    tls: TlsFiles | None = None,
    max_workers: int = 256,
    metrics_port: int | None = None,
    freshness_check: float = 5.0,
    heartbeat: float = 15.0,
    poll_interval: float = 0.1,
    warm_signing: bool = False,
) -> RunningRegistry:
    """Start serving on ``listen``; returns at once with a handle to stop it."""
    check_listen_address(listen, insecure=insecure)
    hub = publisher.PublicationHub(ctx, poll_interval=poll_interval)
    ctx.listeners.append(hub)
    publisher.ensure_fresh(ctx)
    authenticator = Authenticator(ctx)
    interceptors: list[grpc.ServerInterceptor] = [MetricsInterceptor(ctx), AuthInterceptor(authenticator)]
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc")
    server = grpc.server(
        executor,
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ],
    )
    registry_pb2_grpc.add_OrganizationServiceServicer_to_server(OrganizationServicer(ctx), server)
    registry_pb2_grpc.add_StaffServiceServicer_to_server(StaffServicer(ctx), server)
    registry_pb2_grpc.add_PersonnelServiceServicer_to_server(PersonnelServicer(ctx), server)
    registry_pb2_grpc.add_AssessmentServiceServicer_to_server(AssessmentServicer(ctx), server)
    registry_pb2_grpc.add_CredentialServiceServicer_to_server(CredentialServicer(ctx), server)
    registry_pb2_grpc.add_PublicationServiceServicer_to_server(
        PublicationServicer(ctx, hub, heartbeat=heartbeat), server
    )
    registry_pb2_grpc.add_EnrollmentServiceServicer_to_server(EnrollmentServicer(ctx), server)
    registry_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(ctx), server)
    _add_federation(ctx, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if insecure:
        port = server.add_insecure_port(listen)
    else:
        files = tls or TlsFiles.in_dir(ctx.config.tls_dir)
        _ca, chain, key = files.read()
        port = server.add_secure_port(listen, grpc.ssl_server_credentials([(key, chain)]))
    if port == 0:
        raise InvalidArgumentError("--listen", f"cannot listen on {listen} (in use?)")
    server.start()
    hub.start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningRegistry(server, port, ctx, hub, health_servicer, executor=executor)
    if warm_signing:
        threading.Thread(target=_warm_signing, args=(ctx,), name="signing-warmup", daemon=True).start()
    keeper = threading.Thread(
        target=_keep_fresh, args=(ctx, running.stop_event, freshness_check), name="freshness", daemon=True
    )
    keeper.start()
    running.threads.append(keeper)
    if metrics_port is not None:
        start_metrics_server(metrics_port)
    log.info(
        json.dumps(
            {
                "event": "serving",
                "listen": listen,
                "port": port,
                "tls": not insecure,
                "jurisdiction": ctx.config.jurisdiction,
            }
        )
    )
    return running


def _add_federation(ctx: RegistryContext, server: grpc.Server) -> None:
    try:
        from registry.api.servicers.federation import FederationServicer
        from registry.publication.partners import start_partner_sync
    except ImportError:  # pragma: no cover - federation ships with the registry
        return
    registry_pb2_grpc.add_FederationServiceServicer_to_server(FederationServicer(ctx), server)
    start_partner_sync(ctx)


def _stop_federation(ctx: RegistryContext) -> None:
    try:
        from registry.publication.partners import stop_partner_sync
    except ImportError:  # pragma: no cover - federation ships with the registry
        return
    stop_partner_sync(ctx)


def _warm_signing(ctx: RegistryContext) -> None:
    from registry.signing import warm

    try:
        warm(ctx, ctx.keys.issuing_key)
    except Exception as exc:  # noqa: BLE001 - bulk issuance then signs in-process; nothing else depends on it
        log.warning(json.dumps({"event": "signing_pool_unavailable", "error": str(exc)}))


def _keep_fresh(ctx: RegistryContext, stop: threading.Event, every: float) -> None:
    from clearance.errors import ClearanceError

    while not stop.wait(every):
        try:
            publisher.ensure_fresh(ctx)
        except ClearanceError as exc:
            log.warning(json.dumps({"event": "freshness_failed", "error": str(exc)}))


def serve_forever(running: RunningRegistry, grace: float = 10.0) -> None:
    """Block until SIGTERM or SIGINT, then shut down gracefully."""
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info(json.dumps({"event": "stopping", "signal": signum}))
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not done.wait(1.0):
        pass
    started = time.monotonic()
    running.stop(grace)
    log.info(json.dumps({"event": "stopped", "drain_seconds": round(time.monotonic() - started, 3)}))
