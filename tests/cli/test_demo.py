"""``clearance demo``: the whole story runs, and what it leaves behind is what it says it is.

The demo runs as a user runs it (the installed ``clearance`` in a subprocess,
on its own SQLite files). Its artifacts are then checked with independent
implementations wherever one exists: ``jwcrypto`` for every JWS signature
(issuer, holder key binding, status list, trust bundle, both agreement
signatures) and ``token_status_list`` to read the status list, so that a
demo that only agreed with our own code would fail here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import png
import pytest
from jwcrypto.jwk import JWK, JWKSet
from jwcrypto.jws import JWS
from token_status_list import BitArray

from clearance.encoding import b64url_decode, b64url_encode
from tests.cli.conftest import REPO, clearance_command

pytestmark = pytest.mark.slow

DOCUMENTED = {
    "registry-jwks.json",
    "trust-bundle.jwt",
    "agreement.jwt",
    "credential.sd-jwt",
    "presentation.sd-jwt",
    "revoked-credential.sd-jwt",
    "status-list.jwt",
    "statistics.jwt",
    "statistics.svg",
    "statistics.png",
    "demo.json",
}
ALSO = {"visit-assurance.jwt"}


def run_demo(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    finished = subprocess.run(
        [*clearance_command(), "demo", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
        check=False,
    )
    return finished, time.monotonic() - started


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    finished, seconds = run_demo("--out", str(out))
    print(f"\nclearance demo --out: {seconds:.1f}s")
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "Traceback" not in finished.stderr
    return out


def text(path: Path) -> str:
    return path.read_text().strip()


def claims(compact: str) -> dict[str, Any]:
    """The payload of a compact JWS, decoded without our code's help beyond base64url."""
    payload: dict[str, Any] = json.loads(b64url_decode(compact.split(".")[1]))
    return payload


def header(compact: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(b64url_decode(compact.split(".")[0]))
    return decoded


def verified_by(compact: str, key: JWK) -> dict[str, Any]:
    """jwcrypto checks ``compact``'s signature with ``key`` (raising if it does not verify)."""
    jws = JWS()
    jws.deserialize(compact)
    jws.verify(key)
    payload: dict[str, Any] = json.loads(jws.payload)
    return payload


def issuing_keys(demo: Path) -> JWKSet:
    return JWKSet.from_json((demo / "registry-jwks.json").read_text())


def issuer_key(demo: Path, compact: str) -> JWK:
    key = issuing_keys(demo).get_key(header(compact)["kid"])
    assert key is not None, "signed by a key that registry-jwks.json does not hold"
    return key


def summary(demo: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((demo / "demo.json").read_text())
    return loaded


# -- what is left behind -------------------------------------------------------------


def test_the_demo_leaves_exactly_the_documented_artifacts(demo: Path) -> None:
    files = {p.name for p in demo.iterdir() if p.is_file()}
    folders = {p.name for p in demo.iterdir() if p.is_dir()}

    assert files == DOCUMENTED | ALSO
    assert folders == {"work"}


def test_the_credential_is_signed_by_a_key_of_the_registry_jwks(demo: Path) -> None:
    credential = text(demo / "credential.sd-jwt")
    issuer_jwt, *disclosures = credential.split("~")

    payload = verified_by(issuer_jwt, issuer_key(demo, issuer_jwt))

    assert header(issuer_jwt)["typ"] == "dc+sd-jwt"
    assert credential.endswith("~")  # an SD-JWT as issued: no key-binding JWT
    assert disclosures[-1] == ""
    assert payload["clearance"]["jurisdiction"] == "JP"
    assert set(payload) >= {"iss", "iat", "nbf", "exp", "vct", "sub", "cnf", "status", "clearance", "_sd"}
    assert "given_name" not in payload  # names are selectively disclosable only


def test_the_presentation_carries_the_issuer_signature_and_a_key_binding_to_the_demo_challenge(
    demo: Path,
) -> None:
    presentation = text(demo / "presentation.sd-jwt")
    issued, _, kb_jwt = presentation.rpartition("~")
    issuer_jwt = issued.split("~", 1)[0]

    payload = verified_by(issuer_jwt, issuer_key(demo, issuer_jwt))
    holder = JWK(**payload["cnf"]["jwk"])
    binding = verified_by(kb_jwt, holder)

    assert header(kb_jwt)["typ"] == "kb+jwt"
    assert {"nonce": binding["nonce"], "aud": binding["aud"]} == summary(demo)["presentation"]
    assert binding["sd_hash"] == b64url_encode(hashlib.sha256((issued + "~").encode("ascii")).digest())


def test_the_status_list_shows_the_revoked_credential_revoked_and_the_other_valid(demo: Path) -> None:
    token = text(demo / "status-list.jwt")
    revoked = claims(text(demo / "revoked-credential.sd-jwt").split("~", 1)[0])["status"]["status_list"]
    valid = claims(text(demo / "credential.sd-jwt").split("~", 1)[0])["status"]["status_list"]

    payload = verified_by(token, issuer_key(demo, token))
    statuses = BitArray.load(payload["status_list"])

    assert header(token)["typ"] == "statuslist+jwt"
    assert {"idx": revoked["idx"], "uri": revoked["uri"]} == summary(demo)["revoked"]
    assert payload["sub"] == revoked["uri"] == valid["uri"]
    assert payload["status_list"]["bits"] == 2
    assert statuses[revoked["idx"]] == 1
    assert statuses[valid["idx"]] == 0
    assert sum(1 for i in range(len(statuses)) if statuses[i]) == 1  # nothing else was revoked


def test_the_trust_bundle_verifies_under_its_header_root_and_lists_the_agreement(demo: Path) -> None:
    bundle = text(demo / "trust-bundle.jwt")
    root = JWK(**header(bundle)["jwk"])
    agreement = json.loads((demo / "agreement.jwt").read_text())

    payload = verified_by(bundle, root)

    assert root.thumbprint() == header(bundle)["kid"] == summary(demo)["root_fingerprints"]["JP"]
    listed = [json.loads(b64url_decode(a["payload"]))["id"] for a in payload["agreements"]]
    assert listed == [json.loads(b64url_decode(agreement["payload"]))["id"]]
    assert payload["agreements"][0]["signatures"] == agreement["signatures"]
    assert {k["jwk"]["kid"] for k in payload["issuing_keys"]} == {
        k.get("kid") for k in issuing_keys(demo)["keys"]
    }
    assert summary(demo)["revoked"]["uri"] in [s["uri"] for s in payload["status_lists"]]


def test_the_agreement_is_signed_by_both_roots(demo: Path) -> None:
    document = json.loads((demo / "agreement.jwt").read_text())
    payload = json.loads(b64url_decode(document["payload"]))
    roots = {party["jurisdiction"]: JWK(**party["root"]) for party in payload["parties"]}

    assert len(document["signatures"]) == 2
    whole = JWS()
    whole.deserialize(json.dumps(document))  # the general JSON serialization, as jwcrypto reads it
    signers = []
    for signature in document["signatures"]:
        kid = json.loads(b64url_decode(signature["protected"]))["kid"]
        jurisdiction = next(j for j, key in roots.items() if key.thumbprint() == kid)
        single = JWS()
        single.deserialize(json.dumps({"payload": document["payload"], **signature}))
        single.verify(roots[jurisdiction])
        signers.append(jurisdiction)
    for key in roots.values():
        whole.verify(key)

    assert sorted(signers) == ["JP", "US"]
    assert {j: k.thumbprint() for j, k in roots.items()} == summary(demo)["root_fingerprints"]


def test_the_decisions_include_a_cross_border_allow_and_a_releasability_deny(demo: Path) -> None:
    decisions = summary(demo)["decisions"]

    for decision in decisions:
        assert {"label", "presenter_jurisdiction", "outcome", "reasons"} <= set(decision)
        assert decision["outcome"] in ("allow", "deny")
        assert decision["reasons"]
    cross = [d for d in decisions if d["presenter_jurisdiction"] != d["label"]["jurisdiction"]]
    assert any(d["outcome"] == "allow" and d["agreement_id"] for d in cross)
    assert any(
        d["outcome"] == "deny" and d["reasons"][0].startswith("not_releasable:")
        for d in cross
        if d["presenter_jurisdiction"] not in d["label"]["releasable_to"]
    )


def test_the_statistics_are_signed_by_the_registry_and_drawn(demo: Path) -> None:
    token = text(demo / "statistics.jwt")

    payload = verified_by(token, issuer_key(demo, token))

    assert header(token)["typ"] == "clearance-statistics+jwt"
    assert payload["month"] == summary(demo)["oversight"]["month"]
    assert set(payload["tables"]) >= {"assessments", "findings", "appeals", "suspensions", "revocations"}
    width, height, _rows, _info = png.Reader(bytes=(demo / "statistics.png").read_bytes()).read()
    assert width > 0
    assert height > 0
    root = ET.fromstring((demo / "statistics.svg").read_text())  # noqa: S314  (the demo's own output)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_the_monitor_finds_nothing_then_catches_the_planted_credential(demo: Path) -> None:
    oversight = summary(demo)["oversight"]

    assert oversight["clean"]["alerts"] == []
    assert oversight["clean"]["issuances_checked"] == 2
    assert (
        f"issuance_not_audited credential:{oversight['planted']['credential']}"
        in oversight["planted"]["alerts"]
    )


# -- --json ----------------------------------------------------------------------------


def test_demo_json_prints_what_demo_json_holds(demo: Path) -> None:
    finished, seconds = run_demo("--json")
    print(f"\nclearance demo --json: {seconds:.1f}s")

    assert finished.returncode == 0, finished.stderr[-3000:]
    printed = json.loads(finished.stdout)
    kept = summary(demo)
    assert set(printed) == set(kept)
    assert [s["step"] for s in printed["steps"]] == [s["step"] for s in kept["steps"]]
    assert [(d["node"], d["outcome"], d["label"]) for d in printed["decisions"]] == [
        (d["node"], d["outcome"], d["label"]) for d in kept["decisions"]
    ]
    assert set(printed["presentation"]) == {"nonce", "aud"}
    assert set(printed["revoked"]) == {"idx", "uri"}
