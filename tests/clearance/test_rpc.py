"""Errors cross the gRPC boundary as codes and details, and come back as the exact type raised."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clearance.client.interceptor import ErrorMapping
from clearance.errors import (
    AuthenticationError,
    ClearanceError,
    ConflictError,
    DenialCode,
    InvalidArgumentError,
    MalformedError,
    NotFoundError,
    PermissionDeniedError,
    PolicyError,
    RateLimitedError,
    Reason,
    StorageError,
    TransportError,
    VerificationError,
    WorkflowError,
)
from clearance.rpc import DOMAIN, handler

RAISED: list[ClearanceError] = [
    AuthenticationError("access token has expired"),
    PermissionDeniedError("an oversight caller may not issue"),
    PermissionDeniedError("you recorded findings of this assessment", DenialCode.INVESTIGATOR_CANNOT_DECIDE),
    InvalidArgumentError("holder_jwk", "is not a public JWK"),
    MalformedError("holder_jwk nests too deep", Reason.TOO_DEEP),
    NotFoundError("no organization org_1"),
    ConflictError("an organization of that name exists"),
    WorkflowError("consent first"),
    VerificationError(Reason.BAD_SIGNATURE, "the agreement's signature does not verify"),
    VerificationError(Reason.AGREEMENT_TERMINATED, "US no longer lists agreement JP-US-1 (terminated)"),
    PolicyError("level_too_low", "SECRET does not meet TOP_SECRET"),
    PolicyError("not a code!", "a reason that is no UPPER_SNAKE code still travels"),
    TransportError("partner US unreachable"),
    RateLimitedError("slow down"),
    StorageError("database error"),
]


class _Failing:
    """A servicer method that raises what the test put in ``raise_next``."""

    def __init__(self) -> None:
        self.raise_next: ClearanceError = ClearanceError("unset")

    @handler
    def fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise self.raise_next


@pytest.fixture
def served() -> Iterator[tuple[_Failing, str]]:
    from concurrent.futures import ThreadPoolExecutor

    servicer = _Failing()
    server = grpc.server(ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Failing", {"Fail": grpc.unary_unary_rpc_method_handler(servicer.fail)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _call(endpoint: str, *, mapped: bool) -> Callable[[], Any]:
    channel = grpc.insecure_channel(endpoint)
    if mapped:
        channel = grpc.intercept_channel(channel, ErrorMapping(f"test server {endpoint}"))
    method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Failing/Fail")
    return lambda: method(b"", timeout=10)


@pytest.mark.parametrize("raised", RAISED, ids=lambda e: f"{type(e).__name__}-{getattr(e, 'reason', '')}")
def test_the_client_raises_the_exact_error_the_server_raised(
    served: tuple[_Failing, str], raised: ClearanceError
) -> None:
    servicer, endpoint = served
    servicer.raise_next = raised

    with pytest.raises(ClearanceError) as caught:
        _call(endpoint, mapped=True)()

    rebuilt = caught.value
    assert type(rebuilt) is type(raised)
    assert str(rebuilt) == str(raised)
    for attribute in ("reason", "detail", "field", "code"):
        assert getattr(rebuilt, attribute, None) == getattr(raised, attribute, None)


def test_the_details_are_googles_error_model_read_by_googles_library(served: tuple[_Failing, str]) -> None:
    servicer, endpoint = served
    servicer.raise_next = InvalidArgumentError("holder_jwk", "is not a public JWK")

    with pytest.raises(grpc.RpcError) as caught:
        _call(endpoint, mapped=False)()

    assert isinstance(caught.value, grpc.Call)
    status = rpc_status.from_call(caught.value)
    assert status is not None
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "holder_jwk: is not a public JWK"
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info)
    assert status.details[1].Unpack(bad_request)
    assert (info.domain, info.reason) == (DOMAIN, "INVALID_ARGUMENT")
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("holder_jwk", "is not a public JWK")
    ]


def test_a_verification_refusal_carries_its_reason_as_the_error_reason(served: tuple[_Failing, str]) -> None:
    servicer, endpoint = served
    servicer.raise_next = VerificationError(Reason.REVOKED, "credential has been revoked")

    with pytest.raises(grpc.RpcError) as caught:
        _call(endpoint, mapped=False)()

    assert isinstance(caught.value, grpc.Call)
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.metadata["error"]) == ("REVOKED", "VERIFICATION")


def test_a_separation_of_duties_refusal_carries_its_code_as_the_error_reason(
    served: tuple[_Failing, str],
) -> None:
    servicer, endpoint = served
    servicer.raise_next = PermissionDeniedError("you decided it", DenialCode.OWN_DECISION_APPEAL)

    with pytest.raises(grpc.RpcError) as caught:
        _call(endpoint, mapped=False)()

    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    status = rpc_status.from_call(caught.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.metadata["error"], info.metadata["reason"]) == (
        "OWN_DECISION_APPEAL",
        "PERMISSION_DENIED",
        "own_decision_appeal",
    )


def test_a_server_storage_failure_is_not_an_unreachable_server(served: tuple[_Failing, str]) -> None:
    servicer, endpoint = served
    servicer.raise_next = StorageError("database error")

    with pytest.raises(StorageError) as caught:
        _call(endpoint, mapped=True)()

    assert "cannot reach" not in str(caught.value)


def test_an_unreachable_server_is_a_transport_error() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{probe.getsockname()[1]}"

    with pytest.raises(TransportError, match=f"cannot reach test server {endpoint}"):
        _call(endpoint, mapped=True)()


def test_an_unexpected_server_failure_leaks_nothing(served: tuple[_Failing, str]) -> None:
    servicer, endpoint = served
    servicer.raise_next = RuntimeError("secret internals")  # type: ignore[assignment]

    with pytest.raises(ClearanceError) as caught:
        _call(endpoint, mapped=True)()

    assert "secret internals" not in str(caught.value)
    assert "INTERNAL" in str(caught.value)
