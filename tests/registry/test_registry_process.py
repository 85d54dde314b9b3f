"""What only the registry's own process shows: the memory a stranger's message costs, the children a kill leaves."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.setup import StaffCredential, init_registry
from tests.registry.registry_process import (
    RegistryProcess,
    alive,
    start_registry_process,
    wait_until,
)

pytestmark = [pytest.mark.database, pytest.mark.slow]

MIB = 1024 * 1024


@pytest.fixture
def initialized(tmp_path: Path, database_url: str) -> tuple[Path, StaffCredential]:
    directory = tmp_path / "registry"
    ctx, admin = init_registry(directory, jurisdiction="JP", database_url=database_url)
    ctx.close()
    return directory, admin


@pytest.fixture
def registry_process(initialized: tuple[Path, StaffCredential]) -> Iterator[RegistryProcess]:
    process = start_registry_process(initialized[0])
    yield process
    process.stop()


@pytest.mark.parametrize(
    "method",
    [
        "/clearance.v1.PublicationService/GetStatusList",  # public: anyone may call it
        "/clearance.v1.CredentialService/BulkIssueCredentials",  # staff only, and the largest allowed
    ],
)
def test_oversized_anonymous_messages_are_refused_before_they_are_buffered(
    registry_process: RegistryProcess, method: str
) -> None:
    size = 48 * MIB  # far above what any method accepts
    messages = 4
    channel = grpc.insecure_channel(registry_process.endpoint, options=[("grpc.max_send_message_length", -1)])
    try:
        public = rpc.PublicationServiceStub(channel)
        for _ in range(3):  # the first calls' own allocations are not what is measured
            public.GetTrustBundle(pb.GetTrustBundleRequest(), timeout=30)
        baseline = registry_process.status("VmHWM")
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        codes = set()
        for _ in range(messages):  # one after another: what each costs, whatever the machine's load
            try:
                call(b"\x0a" * size, timeout=60)
            except grpc.RpcError as exc:
                codes.add(exc.code())
        grown = (registry_process.status("VmHWM") - baseline) * 1024
    finally:
        channel.close()

    assert codes <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED}
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes or grpc.StatusCode.UNAUTHENTICATED in codes
    # Buffered, each would have cost 48 MiB; the registry's peak grew by what the transport had
    # in flight when the length prefix was read, a small part of one.
    assert grown < size // 2, f"peak memory grew by {grown / MIB:.0f} MiB"


def test_a_killed_registry_leaves_no_signing_worker_behind(initialized: tuple[Path, StaffCredential]) -> None:
    directory, admin = initialized
    process = start_registry_process(directory, warm_signing=True)
    try:
        wait_until(lambda: len(process.children()) >= 3, seconds=60, what="the signing workers started")
        _bulk_issue(process, admin, count=300)  # signed by the workers (more than one batch's minimum)
        children = process.children()  # the workers, and Python's resource tracker
        assert len(children) >= 3
        os.kill(process.pid, signal.SIGKILL)
        process.process.wait(timeout=10)

        wait_until(lambda: not any(alive(pid) for pid in children), seconds=15, what="every child ended")
    finally:
        if process.process.poll() is None:
            process.process.kill()
        process.stop()


def _bulk_issue(process: RegistryProcess, admin: StaffCredential, *, count: int) -> None:
    """Walk one person to a favorable assessment and bulk-issue ``count`` credentials on it."""
    from clearance.keys import SigningKey
    from cli.bench_registry import _prepare

    _connect, channel, assessments = _prepare(process.endpoint, admin)
    holder = json.dumps(SigningKey.generate().public.jwk)
    stub = rpc.CredentialServiceStub(channel)
    issued = stub.BulkIssueCredentials(
        pb.BulkIssueCredentialsRequest(
            requests=[
                pb.IssueCredentialRequest(assessment_id=assessments[n % len(assessments)], holder_jwk=holder)
                for n in range(count)
            ]
        ),
        timeout=120,
    )
    assert len(issued.results) == count
    channel.close()
