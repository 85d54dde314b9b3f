"""``clearance inspect`` on a visit assurance (``typ: clearance-visit+jwt``): decode, then verify with ``--jwks``.

Like every kind: decoding runs the self-contained checks (strict encoding, the
algorithm allow-list, the shape of the claims) and refuses what can never be
valid; ``--jwks`` (a JWK Set, or the issuing registry's trust bundle) adds the
issuer signature, the bundle's issuer and key window, and the visit window at
``--at``. Whether the assurance names the person presenting it and the host
is for the host node alone, and the report says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clearance.credentials import ClearanceClaim
from clearance.encoding import b64url_decode, b64url_encode
from clearance.jws import encode_compact
from clearance.visit import VISIT_TYP, VisitKind, issue_visit_assurance
from cli import exits
from tests.cli.conftest import Artifacts, Run, run_cli
from tests.factories import DAY, NOW, compact_jws

HOST_ORG = "org_lakeshore"


def visit(artifacts: Artifacts, *, issuer: str | None = None, jurisdiction: str = "JP", **times: int) -> str:
    """A visit assurance signed by the JP world's issuing key, written to a file."""
    world = artifacts.world
    token = issue_visit_assurance(
        world.issuing,
        issuer=issuer or world.issuer,
        subject="sub-7",
        holder_thumbprint="h" * 43,
        clearance=ClearanceClaim(jurisdiction, "SECRET", ("joint-research",)),
        host_jurisdiction="US",
        host_organization=HOST_ORG,
        programme="quantum-sensing-2027",
        kind=VisitKind.ONE_TIME,
        issued_at=times.get("issued_at", NOW),
        not_before=times.get("not_before", NOW),
        expires_at=times.get("expires_at", NOW + 5 * DAY),
    )
    return artifacts.write("visit.jwt", token + "\n")


def inspect(*args: str, at: int = NOW, input: str | bytes | None = None) -> Run:
    return run_cli(["inspect", *args, "--at", str(at), "--json"], input=input)


def refused(run: Run, reason: str) -> dict[str, Any]:
    """Exit 3 with one ``error: REASON: ...`` line, and a report that says why."""
    assert run.exit_code == exits.REFUSED, run.stdout + run.stderr
    assert run.stderr.startswith(f"error: {reason}: "), run.stderr
    assert run.stderr.count("\n") == 1
    verification: dict[str, Any] = run.json()["verification"]
    assert (verification["valid"], verification["reason"]) == (False, reason)
    return verification


# -- decoding ----------------------------------------------------------------------


def test_a_visit_assurance_decodes_without_trust(artifacts: Artifacts) -> None:
    run = inspect(visit(artifacts))

    assert run.exit_code == exits.OK, run.stderr
    report = run.json()
    assert report["kind"] == "visit_assurance"
    assert report["header"]["typ"] == VISIT_TYP
    assert report["header"]["kid"] == artifacts.world.issuing.kid
    assert report["issuer"] == artifacts.world.issuer
    assert report["subject"] == "sub-7"
    assert report["holder_key"] == "h" * 43
    assert report["clearance"] == {"jurisdiction": "JP", "level": "SECRET", "categories": ["joint-research"]}
    assert report["host"] == {"jurisdiction": "US", "organization": HOST_ORG}
    assert (report["programme"], report["visit_kind"]) == ("quantum-sensing-2027", "one_time")
    assert report["window"] == {"nbf": NOW, "exp": NOW + 5 * DAY, "state": "current"}
    assert report["assurance_id"].startswith("visit_")
    verification = report["verification"]
    assert (verification["checked"], verification["valid"]) == (False, None)
    assert "needs --jwks" in verification["detail"]
    assert any("only the host node" in item for item in verification["not_checked"])


def test_a_visit_assurance_reads_from_stdin_and_reads_for_humans(artifacts: Artifacts) -> None:
    path = visit(artifacts)
    piped = inspect("-", input=Path(path).read_bytes())
    human = run_cli(["inspect", path, "--at", str(NOW)])

    assert piped.json()["kind"] == "visit_assurance"
    assert human.exit_code == exits.OK
    assert "kind: visit assurance" in human.stdout
    assert "programme: quantum-sensing-2027" in human.stdout
    assert "verified: not checked" in human.stdout


@pytest.mark.parametrize(
    ("at", "state"),
    [(NOW - 1, "not yet started"), (NOW + 5 * DAY - 1, "current"), (NOW + 5 * DAY, "ended")],
)
def test_the_window_state_is_shown_without_trust(artifacts: Artifacts, at: int, state: str) -> None:
    assert inspect(visit(artifacts), at=at).json()["window"]["state"] == state


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none", "typ": VISIT_TYP}, "algorithm_not_allowed"),
        ({"alg": "HS256", "typ": VISIT_TYP, "kid": "k"}, "algorithm_not_allowed"),
    ],
)
def test_a_forbidden_algorithm_is_refused_even_without_trust(
    artifacts: Artifacts, header: dict[str, str], reason: str
) -> None:
    payload = {"iss": artifacts.world.issuer, "sub": "sub-7", "jti": "visit_1"}
    path = artifacts.write("forged.jwt", compact_jws(header, payload, b"x" * 32))

    assert inspect(path).json()["kind"] == "visit_assurance"
    refused(inspect(path), reason)


def test_a_visit_assurance_without_a_host_is_malformed(artifacts: Artifacts) -> None:
    world = artifacts.world
    payload = {
        "iss": world.issuer,
        "sub": "sub-7",
        "jti": "visit_1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + DAY,
        "cnf": {"jkt": "h" * 43},
        "clearance": {"jurisdiction": "JP", "level": "SECRET", "categories": ["joint-research"]},
        "programme": "p",
        "visit_kind": "one_time",
    }
    token = encode_compact({"typ": VISIT_TYP, "kid": world.issuing.kid}, payload, world.issuing)
    path = artifacts.write("hostless.jwt", token)

    refused(inspect(path), "malformed")
    refused(inspect(path, "--jwks", artifacts.jwks), "malformed")


# -- verifying -----------------------------------------------------------------------


def test_a_visit_assurance_verifies_with_the_issuers_jwks(artifacts: Artifacts) -> None:
    run = inspect(visit(artifacts), "--jwks", artifacts.jwks)

    assert run.exit_code == exits.OK, run.stderr
    verification = run.json()["verification"]
    assert (verification["checked"], verification["valid"]) == (True, True)
    assert "inside its window" in verification["detail"]
    assert any("issuer signature" in item for item in verification["passed"])


def test_a_visit_assurance_verifies_with_the_issuers_trust_bundle(artifacts: Artifacts) -> None:
    run = inspect(visit(artifacts), "--jwks", artifacts.bundle)

    assert run.exit_code == exits.OK, run.stderr
    verification = run.json()["verification"]
    assert verification["valid"] is True
    assert "the JP trust bundle v1" in verification["detail"]
    assert any("key window fit" in item for item in verification["passed"])


def test_another_registrys_keys_cannot_vouch_for_it(artifacts: Artifacts) -> None:
    refused(inspect(visit(artifacts), "--jwks", artifacts.other_jwks), "unknown_key")


def test_a_changed_host_breaks_the_signature(artifacts: Artifacts) -> None:
    header, payload, signature = Path(visit(artifacts)).read_text().strip().split(".")
    claims = json.loads(b64url_decode(payload))
    claims["host"]["organization"] = "org_elsewhere"
    forged_payload = b64url_encode(json.dumps(claims).encode())
    path = artifacts.write("forged-host.jwt", f"{header}.{forged_payload}.{signature}")

    assert inspect(path).json()["host"]["organization"] == "org_elsewhere"  # decodes: nothing vouches yet
    refused(inspect(path, "--jwks", artifacts.jwks), "bad_signature")


@pytest.mark.parametrize(
    ("at", "reason"), [(NOW - 1, "not_yet_valid"), (NOW + 5 * DAY, "expired")], ids=["before", "after"]
)
def test_outside_its_window_it_is_refused(artifacts: Artifacts, at: int, reason: str) -> None:
    verification = refused(inspect(visit(artifacts), "--jwks", artifacts.jwks, at=at), reason)

    assert "visit" in verification["detail"]


def test_a_bundle_of_another_issuer_refuses_it(artifacts: Artifacts) -> None:
    path = visit(artifacts, issuer="https://registry.elsewhere.example")

    assert inspect(path, "--jwks", artifacts.jwks).exit_code == exits.OK  # a bare JWK Set names no issuer
    refused(inspect(path, "--jwks", artifacts.bundle), "untrusted_issuer")


def test_a_key_outside_its_window_at_signing_is_refused(artifacts: Artifacts) -> None:
    artifacts.world.issuing_window = (NOW + DAY, NOW + 365 * DAY)
    bundle = artifacts.write("late-key-bundle.jwt", artifacts.world.bundle())

    refused(inspect(visit(artifacts), "--jwks", bundle), "key_not_valid_at_issuance")


def test_a_registry_cannot_vouch_for_another_countrys_clearance(artifacts: Artifacts) -> None:
    refused(inspect(visit(artifacts, jurisdiction="US"), "--jwks", artifacts.bundle), "invalid_claim")
