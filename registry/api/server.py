"""Building and running the registry's gRPC server.

The server is a ``grpc.aio`` (asyncio) server on an event loop of its own
thread (:class:`ServingLoop`, one per process, shared by every registry the
process starts). Every call goes through
:class:`~registry.api.dispatch.ServingInterceptor`: authenticated, admitted,
its request read on the loop, and only then given a worker thread (unary
calls) or none at all (``Watch``, health). The limits are
:class:`~registry.api.admission.ServingLimits`.

TLS by default (with the material ``registry init`` created); plaintext only
with ``insecure=True`` and only on a loopback address. The private files are
checked before anything is served. Health checking (grpc.health.v1) and
server reflection are on, so grpcurl and other standard tools work against
it. Prometheus metrics on an optional port. SIGTERM/SIGINT drain in-flight
calls before exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from clearance.errors import InvalidArgumentError
from clearance.listen_address import check_listen_address as check_listen_address
from clearance.tls import TlsFiles
from clearance.v1 import registry_pb2, registry_pb2_grpc
from registry.api import metrics
from registry.api.admission import ServingLimits
from registry.api.auth import Authenticator
from registry.api.dispatch import ServingInterceptor
from registry.api.private_files import check_private_files
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
T = TypeVar("T")

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


class ServingLoop:
    """The process's asyncio event loop for gRPC servers, run by a thread of its own.

    One per process, shared by every registry the process serves (gRPC's
    asyncio engine wants one loop), started by the first and ended by the last.
    """

    _shared: ServingLoop | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.users = 0
        self.servers: list[grpc.aio.Server] = []
        """Every server served on this loop, kept until the loop has stopped: gRPC ends its engine when
        the last one goes, and must not do so from inside the running loop."""
        self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-serving-loop", daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls) -> ServingLoop:
        """The loop of this process, started if no registry is serving."""
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            cls._shared.users += 1
            return cls._shared

    def release(self) -> None:
        """One registry less; the last one ends the loop and its thread."""
        with ServingLoop._lock:
            self.users -= 1
            if self.users > 0:
                return
            ServingLoop._shared = None
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self.run(_finish_tasks(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.servers.clear()
        gc.collect()  # the stopped servers' native halves, while no loop runs to be told of it
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


async def _finish_tasks() -> None:
    """End what is left on the loop (a wake-up still cascading, a stream's generator) before it stops."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


@dataclass
class RunningRegistry:
    server: grpc.aio.Server | None
    """None once stopped (gRPC's engine ends its poller thread when the last server is gone)."""
    port: int
    ctx: RegistryContext
    hub: publisher.PublicationHub
    health: health.aio.HealthServicer
    serving: ServingLoop
    authenticator: Authenticator
    interceptor: ServingInterceptor
    limits: ServingLimits
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    executor: futures.ThreadPoolExecutor | None = None

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls, let in-flight ones finish for ``grace`` seconds, then close."""
        from registry.signing import close_pools

        if self.server is None:
            return  # already stopped
        self.serving.run(self.health.enter_graceful_shutdown())
        self.stop_event.set()
        if self.hub in self.ctx.listeners:
            self.ctx.listeners.remove(self.hub)
        self.hub.stop()  # every Watch stream ends normally
        close_pools(self.ctx)
        metrics.forget(self.ctx)
        if self.server is not None:
            self.serving.run(self.server.stop(grace), timeout=grace + 5)
            self.server = None  # gRPC's engine ends (with its poller thread) once its last server is gone
        self.serving.release()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        self.authenticator.close()
        _stop_federation(self.ctx)
        for thread in self.threads:
            thread.join(timeout=2)
        self.ctx.close()  # the group-commit writer too: nothing of this server touches the database after

    def load(self) -> dict[str, int]:
        """What the server holds now: admitted calls and streams by class, and this process's threads."""
        return {**self.interceptor.admission.counts, "threads": threading.active_count()}


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
    limits: ServingLimits | None = None,
) -> RunningRegistry:
    """Start serving on ``listen``; returns at once with a handle to stop it.

    Raises:
        InvalidArgumentError: a bad or busy address.
        StorageError: a private file is open to other users.
    """
    check_listen_address(listen, insecure=insecure)
    check_private_files(ctx.config)
    limits = limits or ServingLimits(workers=max_workers)
    serving = ServingLoop.acquire()
    hub = publisher.PublicationHub(ctx, poll_interval=poll_interval)
    hub.attach(serving.loop)
    ctx.listeners.append(hub)
    publisher.ensure_fresh(ctx)
    authenticator = Authenticator(ctx)
    authenticator.preload()
    executor = futures.ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="rpc")
    interceptor = ServingInterceptor(
        authenticator=authenticator, limits=limits, executor=executor, observe=metrics.observe_call
    )
    credentials = None
    if not insecure:
        _ca, chain, key = (tls or TlsFiles.in_dir(ctx.config.tls_dir)).read()
        credentials = grpc.ssl_server_credentials([(key, chain)])

    async def build() -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
        server = grpc.aio.server(
            migration_thread_pool=executor,
            interceptors=[interceptor],
            options=limits.grpc_options(),
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        )
        _add_servicers(ctx, hub, server, heartbeat=heartbeat)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        try:
            if credentials is None:
                port = server.add_insecure_port(listen)
            else:
                port = server.add_secure_port(listen, credentials)
        except RuntimeError:
            port = 0
        if port == 0:
            raise InvalidArgumentError("--listen", f"cannot listen on {listen} (in use?)")
        await server.start()
        serving.servers.append(server)
        for name in ("", *SERVICE_NAMES):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        return server, health_servicer, port

    try:
        server, health_servicer, port = serving.run(build())
    except BaseException:
        serving.release()
        ctx.listeners.remove(hub)
        executor.shutdown(wait=False)
        authenticator.close()
        raise
    hub.start()
    metrics.track(ctx)
    _start_federation(ctx)
    running = RunningRegistry(
        server,
        port,
        ctx,
        hub,
        health_servicer,
        serving,
        authenticator,
        interceptor,
        limits,
        executor=executor,
    )
    if warm_signing:
        threading.Thread(target=_warm_signing, args=(ctx,), name="signing-warmup", daemon=True).start()
    keeper = threading.Thread(
        target=_keep_fresh, args=(ctx, running.stop_event, freshness_check), name="freshness", daemon=True
    )
    keeper.start()
    running.threads.append(keeper)
    if metrics_port is not None:
        metrics.start_metrics_server(metrics_port)
    log.info(
        json.dumps(
            {
                "event": "serving",
                "listen": listen,
                "port": port,
                "tls": not insecure,
                "jurisdiction": ctx.config.jurisdiction,
                "pid": os.getpid(),
            }
        )
    )
    return running


def _add_servicers(
    ctx: RegistryContext, hub: publisher.PublicationHub, server: grpc.aio.Server, *, heartbeat: float
) -> None:
    from registry.api.servicers.federation import FederationServicer

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
    registry_pb2_grpc.add_FederationServiceServicer_to_server(FederationServicer(ctx), server)


def _start_federation(ctx: RegistryContext) -> None:
    from registry.publication.partners import start_partner_sync

    start_partner_sync(ctx)


def _stop_federation(ctx: RegistryContext) -> None:
    from registry.publication.partners import stop_partner_sync

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
