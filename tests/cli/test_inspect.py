"""``clearance inspect``: every artifact decodes; trust verifies or refuses; never-valid input exits 3."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clearance import statuslist
from clearance.credentialtypes import CredentialKind, vct_for
from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import VerificationError
from clearance.inspect import MAX_INPUT_BYTES
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.sdjwt import Disclosure, split
from cli import exits
from cli.main import cli
from tests.cli.conftest import Artifacts, Run, run_cli, run_script
from tests.factories import DAY, NOW, Holder, RegistryWorld, present_credential

AT = ["--at", str(NOW)]


def inspect(*args: str, input: str | bytes | None = None) -> Run:
    return run_cli(["inspect", *args, *AT], input=input)


def assert_refused(run: Run, reason: str | None = None) -> dict[str, Any]:
    """Exit 3, one ``error:`` line on stderr, and (with --json) a report saying why."""
    assert run.exit_code == exits.REFUSED, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("error: ")
    assert "Traceback" not in run.stderr + run.stdout
    if reason is not None:
        assert f"error: {reason}: " in run.stderr
    if not run.stdout.lstrip().startswith("{"):
        return {}
    verification: dict[str, Any] = run.json()["verification"]
    assert verification["checked"] is True
    assert verification["valid"] is False
    if reason is not None:
        assert verification["reason"] == reason
    return verification


# -- every kind decodes -------------------------------------------------------------

KINDS: list[tuple[Callable[[Artifacts], str], str]] = [
    (Artifacts.credential, "personnel_credential"),
    (Artifacts.credential_without_disclosures, "personnel_credential"),
    (Artifacts.facility, "facility_credential"),
    (Artifacts.presentation, "presentation"),
    (Artifacts.status_token, "status_list_token"),
    (Artifacts.status_list, "status_list"),
    (Artifacts.status_delta, "status_delta"),
    (Artifacts.trust_bundle, "trust_bundle"),
    (Artifacts.agreement, "agreement"),
    (Artifacts.proposal, "agreement"),
    (Artifacts.root_rotation, "root_rotation"),
]


@pytest.mark.parametrize(("make", "kind"), KINDS, ids=[f"{m.__name__}" for m, _ in KINDS])
def test_every_kind_decodes_without_trust(
    artifacts: Artifacts, make: Callable[[Artifacts], str], kind: str
) -> None:
    run = inspect(make(artifacts), "--json")

    assert run.exit_code == exits.OK, run.stderr
    assert run.stderr == ""
    report = run.json()
    assert report["kind"] == kind
    assert report["at"] == NOW
    assert report["verification"]["checked"] is False
    assert report["verification"]["valid"] is None
    assert report["verification"]["reason"] is None
    assert "no --root or --jwks given" in report["verification"]["detail"]


@pytest.mark.parametrize(("make", "kind"), KINDS, ids=[f"{m.__name__}" for m, _ in KINDS])
def test_every_kind_reads_from_stdin(
    artifacts: Artifacts, make: Callable[[Artifacts], str], kind: str
) -> None:
    run = inspect("-", "--json", input=Path(make(artifacts)).read_bytes() + b"\n")

    assert run.exit_code == exits.OK, run.stderr
    assert run.json()["kind"] == kind


def test_credential_shows_signed_and_disclosed_claims(artifacts: Artifacts) -> None:
    report = inspect(artifacts.credential(), "--json").json()

    assert report["header"]["typ"] == "dc+sd-jwt"
    assert report["header"]["kid"] == artifacts.world.issuing.kid
    assert "_sd" in report["payload"]
    assert report["claims"]["given_name"] == "Hanako"
    assert report["claims"]["clearance"] == {
        "jurisdiction": "JP",
        "level": "SECRET",
        "categories": ["cyber-threat", "joint-research"],
    }
    assert set(report["disclosed"]) == {"given_name", "family_name", "birthdate", "nationalities", "employer"}
    assert report["status"]["uri"] == artifacts.world.status_uri
    assert report["validity"]["state"] == "current"


def test_presentation_shows_key_binding_and_only_disclosed_claims(artifacts: Artifacts) -> None:
    report = inspect(artifacts.presentation(disclose=("family_name",)), "--json").json()

    assert report["credential_kind"] == "personnel_credential"
    assert report["disclosed"] == ["family_name"]
    assert report["claims"]["family_name"] == "Yamada"
    assert "given_name" not in report["claims"]
    binding = report["key_binding"]
    assert binding["aud"] == "node-a"
    assert binding["nonce"] == "nonce-1"
    assert binding["iat"] == NOW
    assert binding["nonce_freshness"] == "not checked"
    assert any("nonce" in item and "not checked" in item for item in report["verification"]["not_checked"])
    assert any("key-binding" in item for item in report["verification"]["passed"])


def test_agreement_reports_who_signed(artifacts: Artifacts) -> None:
    signed = inspect(artifacts.agreement(), "--json").json()
    proposal = inspect(artifacts.proposal(), "--json").json()

    assert signed["signed_by"] == ["JP", "US"]
    assert [p["signed"] for p in signed["parties"]] == [True, True]
    assert signed["in_force"] is True
    assert proposal["signed_by"] == ["JP"]
    assert [p["signed"] for p in proposal["parties"]] == [True, False]


def test_human_output_names_kind_and_verdict_without_colour(artifacts: Artifacts) -> None:
    unchecked = inspect(artifacts.credential())
    verified = inspect(artifacts.credential(), "--jwks", artifacts.jwks)
    refused = inspect(artifacts.credential(), "--jwks", artifacts.other_jwks)

    assert "kind: personnel credential" in unchecked.stdout
    assert "verified: not checked (" in unchecked.stdout
    assert "verified: yes (" in verified.stdout
    assert "verified: no (unknown_key: " in refused.stdout
    assert "\x1b[" not in unchecked.stdout + verified.stdout + refused.stdout


def test_cli_runner_against_the_group_refuses_with_a_verification_error(artifacts: Artifacts) -> None:
    result = CliRunner().invoke(
        cli, ["inspect", artifacts.credential(), "--jwks", artifacts.other_jwks, "--json", *AT]
    )

    assert isinstance(result.exception, VerificationError)
    assert exits.describe(result.exception)[0] == exits.REFUSED
    assert json.loads(result.stdout)["verification"]["reason"] == "unknown_key"


# -- status lists ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [Artifacts.status_token, Artifacts.status_list])
def test_status_list_json_lists_every_non_zero_index(
    artifacts: Artifacts, make: Callable[[Artifacts], str]
) -> None:
    report = inspect(make(artifacts), "--json").json()

    assert report["bits"] == 2
    assert report["size"] == 131_072
    assert report["non_zero"] == {"12": 1, "40": 2, "131071": 1}
    assert report["counts"] == {"valid": 131_069, "revoked": 2, "suspended": 1}


def test_status_delta_lists_its_updates(artifacts: Artifacts) -> None:
    report = inspect(artifacts.status_delta(), "--json").json()

    assert report["updates"] == {"5": 1, "9": 2}
    assert (report["base_seq"], report["seq"]) == (1, 2)


# -- verification with trust material ---------------------------------------------


def _verified(
    artifacts: Artifacts, make: Callable[[Artifacts], str], trust: Callable[[Artifacts], list[str]]
) -> Run:
    return inspect(make(artifacts), "--json", *trust(artifacts))


VERIFIES: list[tuple[Callable[[Artifacts], str], Callable[[Artifacts], list[str]]]] = [
    (Artifacts.credential, lambda a: ["--jwks", a.jwks]),
    (Artifacts.credential, lambda a: ["--jwks", a.bundle, "--root", a.root_jwk]),
    (Artifacts.facility, lambda a: ["--jwks", a.jwks]),
    (Artifacts.presentation, lambda a: ["--jwks", a.jwks]),
    (Artifacts.presentation, lambda a: ["--jwks", a.bundle, "--root", a.root_thumbprint]),
    (Artifacts.status_token, lambda a: ["--jwks", a.jwks]),
    (Artifacts.status_token, lambda a: ["--jwks", a.bundle]),
    (Artifacts.status_delta, lambda a: ["--jwks", a.bundle, "--root", a.root_pem]),
    (Artifacts.trust_bundle, lambda a: ["--root", a.root_jwk]),
    (Artifacts.trust_bundle, lambda a: ["--root", a.root_pem]),
    (Artifacts.trust_bundle, lambda a: ["--root", a.root_thumbprint]),
    (Artifacts.agreement, lambda a: ["--root", a.root_jwk]),
    (Artifacts.agreement, lambda a: ["--root", a.root_thumbprint]),
    (Artifacts.root_rotation, lambda a: ["--root", a.root_pem]),
]


@pytest.mark.parametrize(
    ("make", "trust"), VERIFIES, ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(VERIFIES)]
)
def test_verifies_with_the_right_trust(
    artifacts: Artifacts, make: Callable[[Artifacts], str], trust: Callable[[Artifacts], list[str]]
) -> None:
    run = _verified(artifacts, make, trust)

    assert run.exit_code == exits.OK, run.stdout + run.stderr
    verification = run.json()["verification"]
    assert verification["checked"] is True
    assert verification["valid"] is True
    assert verification["reason"] is None


REFUSES: list[tuple[Callable[[Artifacts], str], Callable[[Artifacts], list[str]], str]] = [
    (Artifacts.credential, lambda a: ["--jwks", a.other_jwks], "unknown_key"),
    (Artifacts.presentation, lambda a: ["--jwks", a.other_jwks], "unknown_key"),
    (Artifacts.status_token, lambda a: ["--jwks", a.other_jwks], "unknown_key"),
    (Artifacts.status_delta, lambda a: ["--jwks", a.other_jwks], "unknown_key"),
    (Artifacts.credential, lambda a: ["--jwks", a.bundle, "--root", a.other_root], "root_mismatch"),
    (Artifacts.trust_bundle, lambda a: ["--root", a.other_root], "root_mismatch"),
    (Artifacts.trust_bundle, lambda a: ["--root", a.other.root.kid], "root_mismatch"),
    (Artifacts.agreement, lambda a: ["--root", a.stranger_root], "agreement_invalid"),
    (Artifacts.proposal, lambda a: ["--root", a.root_jwk], "agreement_invalid"),
    (Artifacts.root_rotation, lambda a: ["--root", a.other_root], "rotation_invalid"),
    # Trust material that cannot vouch for the artifact refuses rather than passes.
    (Artifacts.root_rotation, lambda a: ["--root", a.root_thumbprint], "unknown_key"),
    (Artifacts.credential, lambda a: ["--root", a.root_jwk], "unknown_key"),
    (Artifacts.trust_bundle, lambda a: ["--jwks", a.jwks], "unknown_key"),
    (Artifacts.status_list, lambda a: ["--jwks", a.jwks], "untrusted_issuer"),
]


@pytest.mark.parametrize(
    ("make", "trust", "reason"), REFUSES, ids=[f"{m.__name__}-{r}-{i}" for i, (m, _, r) in enumerate(REFUSES)]
)
def test_refuses_with_the_wrong_trust(
    artifacts: Artifacts,
    make: Callable[[Artifacts], str],
    trust: Callable[[Artifacts], list[str]],
    reason: str,
) -> None:
    assert_refused(_verified(artifacts, make, trust), reason)


def test_tampered_credential_fails_its_issuer_signature(artifacts: Artifacts) -> None:
    credential, _ = artifacts.world.issue()
    header, payload, signature = credential.split("~")[0].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["clearance"]["level"] = "TOP_SECRET"
    forged = ".".join([header, b64url_encode(canonical_json(claims)), signature])
    path = artifacts.write("forged.sd-jwt", forged + credential[credential.index("~") :])

    assert inspect(path, "--json").exit_code == exits.OK  # it decodes; only the issuer key can tell
    assert_refused(inspect(path, "--json", "--jwks", artifacts.jwks), "bad_signature")


def test_expired_credential_refused_at_a_later_time(artifacts: Artifacts) -> None:
    path = artifacts.credential()
    later = str(NOW + 2 * 365 * DAY)

    run = run_cli(["inspect", path, "--json", "--jwks", artifacts.jwks, "--at", later])

    assert_refused(run, "expired")


def test_expired_bundle_as_jwks_is_refused(artifacts: Artifacts) -> None:
    run = run_cli(["inspect", artifacts.credential(), "--jwks", artifacts.bundle, "--at", str(NOW + 2 * DAY)])

    assert_refused(run, "bundle_expired")


def test_unusable_trust_options_are_usage_errors(artifacts: Artifacts) -> None:
    credential = artifacts.credential()
    wrong_kid = artifacts.write(
        "kid.json", {"keys": [{**artifacts.world.issuing.public.jwk, "kid": "other"}]}
    )

    for trust in (
        ["--root", "not-a-key"],
        ["--root", artifacts.write("garbage.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n")],
        ["--jwks", credential],
        ["--jwks", wrong_kid],
    ):
        run = inspect(credential, *trust)
        assert run.exit_code == exits.USAGE, (trust, run.stderr)
        assert run.stderr.count("\n") == 1


# -- input that can never be valid, with no trust given ------------------------------


def _token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [
            b64url_encode(canonical_json(header)),
            b64url_encode(canonical_json(payload)),
            b64url_encode(signature),
        ]
    )


def _hs256_credential(artifacts: Artifacts) -> str:
    """The classic confusion: HMAC "signed" with the issuer's public key as the secret."""
    credential, _ = artifacts.world.issue()
    jwt = split(credential).jwt
    header = {"alg": "HS256", "typ": "dc+sd-jwt", "kid": artifacts.world.issuing.kid}
    signing_input = b64url_encode(canonical_json(header)) + "." + jwt.split(".")[1]
    secret = json.dumps(artifacts.world.issuing.public.jwk).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url_encode(mac) + "~"


def _list(bits: Any, data: bytes) -> dict[str, Any]:
    return {"bits": bits, "lst": b64url_encode(zlib.compress(data, 9))}


def _signed_list(artifacts: Artifacts, status_list: dict[str, Any]) -> str:
    payload = {"sub": artifacts.world.status_uri, "iat": NOW, "exp": NOW + DAY, "status_list": status_list}
    return encode_compact(
        {"typ": "statuslist+jwt", "kid": artifacts.world.issuing.kid}, payload, artifacts.world.issuing
    )


BOMB = bytes(statuslist.MAX_LIST_BYTES * 2)

NEVER_VALID: list[tuple[str, Callable[[Artifacts], str | bytes], str]] = [
    (
        "alg-none",
        lambda a: _token({"alg": "none", "typ": "statuslist+jwt"}, {"sub": "x", "iat": NOW}),
        "algorithm_not_allowed",
    ),
    ("alg-hs256", _hs256_credential, "algorithm_not_allowed"),
    (
        "alg-unknown",
        lambda a: _token({"alg": "RS256", "typ": "clearance-bundle+jwt"}, {}),
        "algorithm_not_allowed",
    ),
    ("bad-base64", lambda a: "not!base64.eyJ9.abc", "malformed"),
    ("not-json", lambda a: b64url_encode(b"{nope") + ".e30.", "malformed"),
    ("json-garbage", lambda a: '{"bits": 2, ', "malformed"),
    ("not-an-artifact", lambda a: "hello world", "malformed"),
    ("unknown-json", lambda a: json.dumps({"hello": "world"}), "malformed"),
    ("unknown-typ", lambda a: _token({"alg": "EdDSA", "typ": "JWT"}, {}), "wrong_type"),
    ("empty", lambda a: "\n", "malformed"),
    ("not-utf8", lambda a: b"\xff\xfe\x00eyJ", "malformed"),
    ("bits-3", lambda a: json.dumps(_list(3, bytes(16))), "malformed"),
    ("bits-string", lambda a: json.dumps(_list("2", bytes(16))), "malformed"),
    ("signed-bits-3", lambda a: _signed_list(a, _list(3, bytes(16))), "malformed"),
    ("zlib-bomb", lambda a: json.dumps(_list(2, BOMB)), "too_large"),
    ("signed-zlib-bomb", lambda a: _signed_list(a, _list(2, BOMB)), "too_large"),
    ("lst-not-zlib", lambda a: json.dumps({"bits": 2, "lst": b64url_encode(b"plain bytes")}), "malformed"),
    (
        "duplicate-member",
        lambda a: '{"bits": 2, "bits": 1, "lst": "' + _list(2, bytes(16))["lst"] + '"}',
        "duplicate_member",
    ),
    (
        "duplicate-header-member",
        lambda a: b64url_encode(b'{"alg":"EdDSA","typ":"statuslist+jwt","typ":"x"}') + ".e30.AA",
        "duplicate_member",
    ),
    ("oversize-input", lambda a: b"x" * (MAX_INPUT_BYTES + 1), "too_large"),
    ("oversize-sd-jwt", lambda a: split(a.world.issue()[0]).jwt + "~" + "A" * (70 * 1024) + "~", "too_large"),
    ("kb-jwt-alone", lambda a: _token({"alg": "EdDSA", "typ": "kb+jwt"}, {}), "wrong_type"),
    ("sd-jwt-without-tilde", lambda a: split(a.world.issue()[0]).jwt, "malformed"),
]


@pytest.mark.parametrize(("name", "make", "reason"), NEVER_VALID, ids=[n for n, _, _ in NEVER_VALID])
def test_never_valid_input_is_refused_without_trust(
    artifacts: Artifacts, name: str, make: Callable[[Artifacts], str | bytes], reason: str
) -> None:
    path = artifacts.write(name, make(artifacts))

    verification = assert_refused(inspect(path, "--json"), reason)
    assert verification["detail"]
    assert_refused(inspect(path), reason)  # the same refusal in human form


def test_presentation_with_a_forged_key_binding_is_refused_without_trust(artifacts: Artifacts) -> None:
    credential, _ = artifacts.world.issue()
    stolen = present_credential(credential, Holder(), nonce="n", audience="node-a")
    path = artifacts.write("stolen.sd-jwt", stolen)

    assert_refused(inspect(path, "--json"), "key_binding_invalid")


def test_presentation_with_swapped_disclosures_is_refused_without_trust(artifacts: Artifacts) -> None:
    presentation = Path(artifacts.presentation(disclose=("given_name",))).read_text()
    other, _ = artifacts.world.issue()
    parts = split(presentation)
    foreign = split(other).disclosures[0]
    forged = "~".join([parts.jwt, foreign, parts.key_binding or ""])

    assert_refused(inspect(artifacts.write("swapped.sd-jwt", forged), "--json"), "disclosure_mismatch")


def _nested_disclosures(artifacts: Artifacts, *, per_disclosure: int, count: int) -> str:
    """A credential whose one disclosed claim nests ``count`` disclosures, each ``per_disclosure`` deep."""
    world, holder = artifacts.world, SigningKey.generate()
    inner = Disclosure.create(None, "x", "salt-0")
    chain = [inner]
    for i in range(1, count):
        value: Any = {"...": chain[-1].digest}
        for _ in range(per_disclosure):
            value = [value]
        chain.append(Disclosure.create(None, value, f"salt-{i}"))
    top = Disclosure.create("deep", [{"...": chain[-1].digest}], "salt-top")
    claims = {
        "iss": world.issuer,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + DAY,
        "vct": vct_for(CredentialKind.PERSONNEL, world.issuer),
        "sub": "sub-deep",
        "cnf": {"jwk": {k: v for k, v in holder.public.jwk.items() if k != "kid"}},
        "status": {"status_list": {"idx": 1, "uri": world.status_uri}},
        "clearance": {"jurisdiction": "JP", "level": "SECRET", "categories": ["cyber-threat"]},
        "_sd": [top.digest],
        "_sd_alg": "sha-256",
    }
    jwt = encode_compact({"typ": "dc+sd-jwt", "kid": world.issuing.kid}, claims, world.issuing)
    return "~".join([jwt, top.encoded, *(d.encoded for d in reversed(chain))]) + "~"


def test_disclosures_nested_in_disclosures_are_refused_past_the_json_depth_cap(artifacts: Artifacts) -> None:
    shallow = artifacts.write("shallow.sd-jwt", _nested_disclosures(artifacts, per_disclosure=2, count=3))
    deep = artifacts.write("deep.sd-jwt", _nested_disclosures(artifacts, per_disclosure=28, count=30))

    assert inspect(shallow, "--json", "--jwks", artifacts.jwks).exit_code == exits.OK
    assert_refused(inspect(deep, "--json"), "too_deep")
    assert_refused(inspect(deep), "too_deep")


def test_input_cap_admits_the_largest_status_list_token() -> None:
    assert MAX_INPUT_BYTES >= statuslist.MAX_TOKEN_BYTES


# -- the installed script -------------------------------------------------------------


def test_installed_script_refuses_with_exit_3_and_one_line(artifacts: Artifacts) -> None:
    none_alg = artifacts.write("none.jwt", _token({"alg": "none", "typ": "statuslist+jwt"}, {}))
    bomb = artifacts.write("bomb.json", json.dumps(_list(2, BOMB)))

    for args in (
        [none_alg],
        [bomb, "--json"],
        [artifacts.credential(), "--jwks", artifacts.other_jwks],
    ):
        done = run_script(["inspect", *args, *AT])
        assert done.returncode == exits.REFUSED, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr


def test_installed_script_verifies_from_stdin(artifacts: Artifacts) -> None:
    presentation = Path(artifacts.presentation()).read_bytes()
    done = run_script(["inspect", "-", "--json", "--jwks", artifacts.jwks, *AT], input=presentation)

    assert done.returncode == exits.OK, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["verification"]["valid"] is True


def test_control_and_bidi_characters_from_the_artifact_are_escaped(artifacts: Artifacts) -> None:
    hostile = "\x1b[2J\u202eevil\x9b"
    credential, _ = artifacts.world.issue(personal={"given_name": hostile})
    path = artifacts.write("hostile.sd-jwt", credential)

    human = inspect(path)
    machine = inspect(path, "--json")

    for run in (human, machine):
        assert run.exit_code == exits.OK
        assert not {"\x1b", "\u202e", "\x9b"} & set(run.stdout)
    assert "\\u001b[2J\\u202eevil\\u009b" in human.stdout
    assert machine.json()["claims"]["given_name"] == hostile


def test_a_haip_credential_is_checked_against_the_bundles_issuer_ca(tmp_path: Path) -> None:
    world = RegistryWorld.create(haip=True)
    bundle = tmp_path / "bundle.jwt"
    bundle.write_text(world.bundle())
    good, bad = tmp_path / "good.sd-jwt", tmp_path / "bad.sd-jwt"
    good.write_text(world.issue()[0])
    stranger = RegistryWorld.create(haip=True)
    bad.write_text(world.issue(x5c=(stranger.leaf_certificate(world.issuing),))[0])

    report = inspect(str(good), "--jwks", str(bundle), "--json").json()
    assert any("x5c chain certifies" in line for line in report["verification"]["passed"])
    assert_refused(inspect(str(bad), "--jwks", str(bundle), "--json"), "chain_untrusted")
