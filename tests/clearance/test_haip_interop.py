"""Credentials on the HAIP profile (ES256, x5c) checked by verifiers we did not write.

* ``polaris-oid4vp`` (PyPI), an OpenID4VP 1.0 + HAIP 1.0 verifier, which refuses ``EdDSA``;
* ``@sd-jwt/sd-jwt-vc`` (npm), with the type metadata fetched from the ``vct`` URL (its
  ``vct#integrity`` checked) and the status read from the status list, both served over HTTPS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from polaris_oid4vp.sdjwt import verify_presentation as polaris_verify
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from clearance.credentialtypes import CredentialKind, type_metadata_documents, vct_for
from clearance.keys import SigningKey
from tests.factories import Holder, RegistryWorld, present_credential
from tests.https_server import loopback_tls, serve_https
from tests.interop.node_scripts import run_node

AUDIENCE = "x509_hash:verifier"


def anchor(world: RegistryWorld) -> x509.Certificate:
    return x509.load_der_x509_certificate(world.ca_der)


def test_a_haip_verifier_accepts_a_credential_on_the_haip_profile() -> None:
    world = RegistryWorld.create(haip=True)
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = world.issue(holder)
    presentation = present_credential(credential, holder, nonce="n-1", audience=AUDIENCE, issued_at=world.now)

    verdict = polaris_verify(
        presentation,
        expected_nonce="n-1",
        expected_audience=AUDIENCE,
        trust_anchors=[anchor(world)],
        expected_vct=vct_for(CredentialKind.PERSONNEL, world.issuer),
        now=world.now,
    )
    assert verdict.authentic, verdict.reason
    assert verdict.iss_bound is True  # the leaf names the issuer URL
    assert verdict.claims["clearance"]["level"] == "SECRET"


def test_the_same_haip_verifier_refuses_the_ed25519_profile_and_a_foreign_ca() -> None:
    holder = Holder(SigningKey.generate("ES256"))
    plain = RegistryWorld.create()
    credential, _ = plain.issue(holder)
    presentation = present_credential(credential, holder, nonce="n-1", audience=AUDIENCE, issued_at=plain.now)
    verdict = polaris_verify(
        presentation, expected_nonce="n-1", expected_audience=AUDIENCE, trust_anchors=[], now=plain.now
    )
    assert (verdict.authentic, verdict.code) == (False, "issuer_alg")

    haip, stranger = RegistryWorld.create(haip=True), RegistryWorld.create(haip=True)
    credential, _ = haip.issue(holder)
    presentation = present_credential(credential, holder, nonce="n-1", audience=AUDIENCE, issued_at=haip.now)
    verdict = polaris_verify(
        presentation,
        expected_nonce="n-1",
        expected_audience=AUDIENCE,
        trust_anchors=[anchor(stranger)],
        now=haip.now,
    )
    assert (verdict.authentic, verdict.code) == (False, "issuer_key")


def publication(world: RegistryWorld, documents: dict[str, tuple[str, bytes]]) -> ASGIApp:
    """What the registry's HTTPS publication will serve: type metadata at each vct, the status list."""
    documents.update(type_metadata_documents(world.issuer))
    status_path = world.status_uri.removeprefix(world.issuer)

    async def type_metadata(request: Request) -> Response:
        media_type, body = documents[request.url.path]
        return Response(body, media_type=media_type)

    async def status_list(request: Request) -> Response:
        return Response(world.status_token(), media_type="application/statuslist+jwt")

    routes = [Route(path, type_metadata) for path in documents] + [Route(status_path, status_list)]
    return Starlette(routes=routes)


Published = tuple[RegistryWorld, dict[str, tuple[str, bytes]], Path, Path]


@pytest.fixture
def published(tmp_path: Path) -> Iterator[Published]:
    """A HAIP registry at the real time, its documents served at its issuer URL over HTTPS."""
    tls = loopback_tls(tmp_path / "tls")
    worlds: list[RegistryWorld] = []
    documents: dict[str, tuple[str, bytes]] = {}

    def make_app(base_url: str) -> ASGIApp:
        worlds.append(RegistryWorld.create(haip=True, issuer=base_url, now=int(time.time())))
        return publication(worlds[0], documents)

    with serve_https(make_app, tls) as _:
        ca_pem = tmp_path / "issuer-ca.pem"
        ca_pem.write_bytes(anchor(worlds[0]).public_bytes(serialization.Encoding.PEM))
        yield worlds[0], documents, ca_pem, tls.ca


def test_sd_jwt_vc_library_verifies_type_metadata_integrity_and_status(published: Published) -> None:
    world, documents, issuer_ca, tls_ca = published
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = world.issue(holder)
    presentation = present_credential(
        credential, holder, nonce="n-2", audience=AUDIENCE, issued_at=world.now, disclose=("given_name",)
    )
    code, answer = run_node(
        "sdjwt_vc_verify.mjs", presentation, str(issuer_ca), "n-2", str(world.now), ca_file=tls_ca
    )
    assert code == 0
    assert answer["ok"], answer
    assert answer["payload"]["given_name"] == "Hanako"
    assert answer["type_name"] == "Personnel security clearance"

    path = next(p for p in documents if p.endswith("/personnel/v1"))
    media_type, original = documents[path]
    documents[path] = (media_type, original.replace(b"Personnel", b"Visitor"))  # not the document signed for
    code, answer = run_node(
        "sdjwt_vc_verify.mjs", presentation, str(issuer_ca), "n-2", str(world.now), ca_file=tls_ca
    )
    assert not answer["ok"]
    assert "integrity" in answer["message"]
    documents[path] = (media_type, original)

    world.status_list.set(world.next_index - 1, 1)  # revoked: the library reads it from the list
    code, answer = run_node(
        "sdjwt_vc_verify.mjs", presentation, str(issuer_ca), "n-2", str(world.now), ca_file=tls_ca
    )
    assert not answer["ok"]
