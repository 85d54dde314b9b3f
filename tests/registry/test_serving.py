"""The registry as a server: what standard gRPC tooling and operators rely on.

Health checking and server reflection answer standard clients (the ones
grpcurl and every gRPC load balancer use); TLS is the default and plaintext
is refused beyond loopback; metrics are served on their own port; a stop
lets a call in flight finish.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from sqlalchemy import Connection, event

from clearance.errors import InvalidArgumentError
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api import server
from registry.api.server import RunningRegistry, check_listen_address
from registry.setup import init_registry

pytestmark = pytest.mark.database

SERVICES = {
    "clearance.v1.OrganizationService",
    "clearance.v1.StaffService",
    "clearance.v1.PersonnelService",
    "clearance.v1.AssessmentService",
    "clearance.v1.CredentialService",
    "clearance.v1.PublicationService",
    "clearance.v1.EnrollmentService",
    "clearance.v1.AuditService",
    "clearance.v1.FederationService",
    "grpc.health.v1.Health",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tls_registry(tmp_path: Path, database_url: str) -> Iterator[tuple[RunningRegistry, bytes]]:
    ctx, _admin = init_registry(tmp_path / "registry", jurisdiction="JP", database_url=database_url)
    running = server.start(ctx, "127.0.0.1:0", metrics_port=_free_port())
    try:
        yield running, (tmp_path / "registry" / "tls" / "ca.pem").read_bytes()
    finally:
        running.stop(0.5)
        ctx.close()


def _tls_channel(running: RunningRegistry, ca: bytes) -> grpc.Channel:
    return grpc.secure_channel(
        f"127.0.0.1:{running.port}", grpc.ssl_channel_credentials(root_certificates=ca)
    )


def test_a_standard_health_client_sees_every_service_serving(
    tls_registry: tuple[RunningRegistry, bytes],
) -> None:
    running, ca = tls_registry
    with _tls_channel(running, ca) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", *sorted(SERVICES - {"grpc.health.v1.Health"})):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


def test_server_reflection_lists_the_services_and_describes_their_methods(
    tls_registry: tuple[RunningRegistry, bytes],
) -> None:
    running, ca = tls_registry
    with _tls_channel(running, ca) as channel:
        reflection = ProtoReflectionDescriptorDatabase(channel)
        listed = set(reflection.get_services())
        assert listed >= SERVICES
        described = reflection.FindFileContainingSymbol("clearance.v1.CredentialService")
        methods = {m.name for s in described.service if s.name == "CredentialService" for m in s.method}
        assert {"IssueCredential", "RevokeCredential", "BulkIssueCredentials"} <= methods


def test_tls_is_the_default_and_a_plaintext_client_gets_nothing(
    tls_registry: tuple[RunningRegistry, bytes],
) -> None:
    running, _ca = tls_registry
    with (
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        rpc.PublicationServiceStub(channel).GetTrustBundle(pb.GetTrustBundleRequest(), timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_registry_ca_is_refused(
    tls_registry: tuple[RunningRegistry, bytes], tmp_path: Path
) -> None:
    running, _ca = tls_registry
    from clearance.tls import create_tls

    stranger = create_tls(tmp_path / "other-ca", common_name="someone else", hosts=["127.0.0.1"])
    with (
        grpc.secure_channel(
            f"127.0.0.1:{running.port}",
            grpc.ssl_channel_credentials(root_certificates=stranger.ca.read_bytes()),
        ) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        rpc.PublicationServiceStub(channel).GetTrustBundle(pb.GetTrustBundleRequest(), timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_publication_reads_need_no_credential_but_staff_calls_do(
    tls_registry: tuple[RunningRegistry, bytes],
) -> None:
    running, ca = tls_registry
    with _tls_channel(running, ca) as channel:
        bundle = (
            rpc.PublicationServiceStub(channel).GetTrustBundle(pb.GetTrustBundleRequest(), timeout=5).bundle
        )
        assert bundle.count(".") == 2
        with pytest.raises(grpc.RpcError) as refused:
            rpc.StaffServiceStub(channel).WhoAmI(pb.WhoAmIRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("listen", ["0.0.0.0:7443", "10.1.2.3:7443", "registry.example:7443", "[::]:7443"])
def test_plaintext_is_refused_beyond_loopback(listen: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        check_listen_address(listen, insecure=True)
    assert refused.value.field == "--insecure"


@pytest.mark.parametrize("listen", ["127.0.0.1:7443", "localhost:7443", "[::1]:7443"])
def test_plaintext_is_allowed_on_loopback(listen: str) -> None:
    check_listen_address(listen, insecure=True)


@pytest.mark.parametrize("listen", ["7443", "127.0.0.1", ":7443", "host:port"])
def test_a_malformed_listen_address_names_the_option(listen: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        check_listen_address(listen, insecure=False)
    assert refused.value.field == "--listen"


def test_metrics_count_calls_by_method_and_code_on_their_own_port(tmp_path: Path, database_url: str) -> None:
    ctx, _admin = init_registry(tmp_path / "registry", jurisdiction="JP", database_url=database_url)
    metrics_port = _free_port()
    running = server.start(ctx, "127.0.0.1:0", insecure=True, metrics_port=metrics_port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            rpc.PublicationServiceStub(channel).GetTrustBundle(pb.GetTrustBundleRequest(), timeout=5)
            with pytest.raises(grpc.RpcError):
                rpc.PublicationServiceStub(channel).GetStatusList(pb.GetStatusListRequest(uri=""), timeout=5)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    finally:
        running.stop(0.5)
        ctx.close()
    assert 'clearance_rpc_calls_total{code="OK",method="GetTrustBundle"}' in text
    assert 'clearance_rpc_calls_total{code="INVALID_ARGUMENT",method="GetStatusList"}' in text
    assert "clearance_rpc_latency_seconds_bucket" in text


def _refuses_new_calls(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return True
    return False


def test_a_stop_lets_a_call_in_flight_finish(tmp_path: Path, database_url: str) -> None:
    ctx, _admin = init_registry(tmp_path / "registry", jurisdiction="JP", database_url=database_url)
    running = server.start(ctx, "127.0.0.1:0", insecure=True)
    in_flight, release, results = threading.Event(), threading.Event(), []

    def hold_the_first_call(_connection: Connection) -> None:  # the database begins its transaction
        if threading.current_thread().name.startswith("rpc") and not in_flight.is_set():
            in_flight.set()
            release.wait(10)

    event.listen(ctx.db.engine, "begin", hold_the_first_call, insert=True)  # before any lock is taken

    def call() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            results.append(
                rpc.PublicationServiceStub(channel).GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10)
            )

    caller = threading.Thread(target=call)
    caller.start()
    assert in_flight.wait(5)
    stopper = threading.Thread(target=running.stop, kwargs={"grace": 5.0})
    stopper.start()
    deadline = time.monotonic() + 10
    while not (stopping := _refuses_new_calls(running.port)) and time.monotonic() < deadline:
        time.sleep(0.01)  # waits for the server to stop taking calls, not for time to pass
    release.set()
    stopper.join(10)
    caller.join(10)
    ctx.close()
    assert stopping, "the server stopped taking new calls while one was in flight"
    assert len(results) == 1
    assert results[0].bundle
