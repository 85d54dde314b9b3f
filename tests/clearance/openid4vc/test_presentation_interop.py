"""A wallet we did not write (@openid4vc/openid4vp with @sd-jwt/sd-jwt-vc) answers our verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from clearance.keys import SigningKey
from tests.factories import Holder
from tests.interop.node_scripts import run_node
from tests.openid4vc_worlds import VerifierWorld


def wallet(
    verifier: VerifierWorld, tmp_path: Path, mode: str, *, disclose: tuple[str, ...] = ()
) -> dict[str, object]:
    started = verifier.start(disclose=disclose)
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = verifier.registry.issue(holder)
    ca_pem = tmp_path / "verifier-ca.pem"
    ca_pem.write_bytes(
        x509.load_der_x509_certificate(verifier.ca_der).public_bytes(serialization.Encoding.PEM)
    )
    code, answer = run_node(
        "vp_holder.mjs",
        started.authorization_uri,
        credential,
        json.dumps(holder.key.private_jwk()),
        str(ca_pem),
        str(verifier.clock.now),
        mode,
        ca_file=verifier.tls.ca,
    )
    assert code == 0, answer
    assert isinstance(answer, dict)
    return answer


def test_openid4vp_library_answers_and_the_verifier_allows(verifier: VerifierWorld, tmp_path: Path) -> None:
    answer = wallet(verifier, tmp_path, "once", disclose=("given_name",))
    assert answer["statuses"] == [200]
    assert answer["client_id"] == verifier.config.client_id
    assert answer["disclosed"] == ["given_name"]
    [(_, decision)] = verifier.backend.decisions
    assert decision == {"decision": "allow", "level": "SECRET"}


@pytest.mark.parametrize(("mode", "statuses"), [("twice", [200, 400]), ("tampered", [400])])
def test_openid4vp_library_replayed_or_tampered_response_is_refused(
    verifier: VerifierWorld, tmp_path: Path, mode: str, statuses: list[int]
) -> None:
    answer = wallet(verifier, tmp_path, mode)
    assert answer["statuses"] == statuses
    bodies = answer["bodies"]
    assert isinstance(bodies, list)
    assert bodies[-1]["error"] == "invalid_request"
    assert len(verifier.backend.decisions) == (1 if mode == "twice" else 0)
