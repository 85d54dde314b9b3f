"""``clearance root``: the offline side of a ceremony, run as an operator would."""

from __future__ import annotations

import json
from pathlib import Path

from clearance.bundle import sign_threshold_bundle, unsigned_threshold_bundle, verify_threshold_bundle
from clearance.ceremony import Kind, SigningRequest
from clearance.changes import summarize_bundle_change
from clearance.keys import read_private_key
from clearance.pkcs11 import Pkcs11Module, generate_key_pair
from clearance.rootdoc import RootDocument
from cli import exits
from cli.softhsm import ScratchToken, SoftHsm
from tests.clearance.threshold_world import ThresholdRegistry
from tests.cli.conftest import run_cli
from tests.factories import NOW


def init_root(media: Path, keys: int = 3, threshold: int = 2) -> RootDocument:
    run = run_cli(
        [
            "root",
            "init",
            "--out",
            str(media),
            "--jurisdiction",
            "JP",
            "--keys",
            str(keys),
            "--threshold",
            str(threshold),
            "--json",
        ]
    )
    assert run.exit_code == exits.OK, run.stderr
    root = RootDocument.parse(json.loads((media / "root-v1.json").read_text()))
    assert run.json()["fingerprint"] == root.fingerprint
    return root


def bundle_request(root: RootDocument, path: Path, summary: list[str] | None = None) -> SigningRequest:
    registry = ThresholdRegistry("JP", [], [root])
    old, new = registry.bundle(version=1), registry.bundle(version=2)
    request = SigningRequest.create(
        Kind.BUNDLE,
        unsigned_threshold_bundle(new),
        summarize_bundle_change(old, new) if summary is None else summary,
        created=NOW,
    )
    path.write_text(json.dumps(request.to_json()))
    return request


def test_a_two_of_three_ceremony_signs_a_bundle_and_rotates_the_root(tmp_path: Path) -> None:
    media = tmp_path / "media"
    v1 = init_root(media)
    assert sorted(p.name for p in media.iterdir()) == [
        "root-key-1.pem",
        "root-key-2.pem",
        "root-key-3.pem",
        "root-v1.json",
    ]
    assert (media / "root-key-1.pem").stat().st_mode & 0o077 == 0
    bundle_request(v1, tmp_path / "bundle.request.json")

    for i in (1, 3):
        run = run_cli(
            [
                "root",
                "sign",
                str(tmp_path / "bundle.request.json"),
                "--key",
                str(media / f"root-key-{i}.pem"),
                "--out",
                str(tmp_path / f"sig-{i}.json"),
                "--yes",
            ]
        )
        assert run.exit_code == exits.OK, run.stderr
        assert "trust bundle v2" in run.stdout
        assert "payload sha256:" in run.stdout
    run = run_cli(
        [
            "root",
            "assemble",
            str(tmp_path / "bundle.request.json"),
            str(tmp_path / "sig-1.json"),
            str(tmp_path / "sig-3.json"),
            "--root",
            str(media / "root-v1.json"),
            "--out",
            str(tmp_path / "bundle.json"),
        ]
    )
    assert run.exit_code == exits.OK, run.stderr
    assert verify_threshold_bundle(json.loads((tmp_path / "bundle.json").read_text()), v1).version == 2

    run = run_cli(
        [
            "root",
            "rotate",
            "--current",
            str(media / "root-v1.json"),
            "--out",
            str(media),
            "--generate",
            "1",
            "--remove",
            v1.keys[1].thumbprint,
            "--json",
        ]
    )
    assert run.exit_code == exits.OK, run.stderr
    request = str(media / "root-v2.request.json")
    signers = ["root-key-1.pem", "root-key-3.pem", "root-v2-key-1.pem"]
    for i, name in enumerate(signers):
        run = run_cli(
            [
                "root",
                "sign",
                request,
                "--key",
                str(media / name),
                "--out",
                str(tmp_path / f"r{i}.json"),
                "--previous",
                str(media / "root-v1.json"),
                "--yes",
            ]
        )
        assert run.exit_code == exits.OK, run.stderr
        assert "NOT" not in run.stdout
    run = run_cli(
        [
            "root",
            "assemble",
            request,
            *(str(tmp_path / f"r{i}.json") for i in range(3)),
            "--root",
            str(media / "root-v1.json"),
            "--out",
            str(media / "root-v2.json"),
        ]
    )
    assert run.exit_code == exits.OK, run.stderr

    run = run_cli(
        [
            "root",
            "verify",
            "--pin",
            v1.fingerprint,
            str(media / "root-v1.json"),
            str(media / "root-v2.json"),
            "--json",
        ]
    )
    assert run.exit_code == exits.OK, run.stderr
    assert run.json()["version"] == 2
    assert v1.keys[1].thumbprint not in run.json()["keys"]


def test_an_altered_request_is_refused_and_nothing_is_signed(tmp_path: Path) -> None:
    media = tmp_path / "media"
    v1 = init_root(media, keys=1, threshold=1)
    request = bundle_request(v1, tmp_path / "bundle.request.json")
    other = bundle_request(v1, tmp_path / "other.json", summary=["something else"])
    altered = {**request.to_json(), "payload": other.payload_b64}
    (tmp_path / "altered.json").write_text(json.dumps(altered))

    run = run_cli(
        [
            "root",
            "sign",
            str(tmp_path / "altered.json"),
            "--key",
            str(media / "root-key-1.pem"),
            "--out",
            str(tmp_path / "sig.json"),
            "--yes",
        ]
    )

    assert run.exit_code == exits.REFUSED
    assert "payload_mismatch" in run.stderr
    assert not (tmp_path / "sig.json").exists()


def test_signing_asks_first_and_a_no_signs_nothing(tmp_path: Path) -> None:
    media = tmp_path / "media"
    v1 = init_root(media, keys=1, threshold=1)
    bundle_request(v1, tmp_path / "request.json")
    args = [
        "root",
        "sign",
        str(tmp_path / "request.json"),
        "--key",
        str(media / "root-key-1.pem"),
        "--out",
        str(tmp_path / "sig.json"),
    ]

    run = run_cli(args, input="n\n")
    assert run.exit_code == exits.FAILURE
    assert "Sign exactly this payload?" in run.stdout
    assert not (tmp_path / "sig.json").exists()

    run = run_cli(args, input="y\n")
    assert run.exit_code == exits.OK, run.stderr
    assert (tmp_path / "sig.json").exists()


def test_a_summary_that_does_not_match_the_payload_is_flagged(tmp_path: Path) -> None:
    media = tmp_path / "media"
    v1 = init_root(media, keys=1, threshold=1)
    registry = ThresholdRegistry("JP", [], [v1])
    previous = tmp_path / "bundle-v1.json"
    root_key = read_private_key(media / "root-key-1.pem")
    previous.write_text(json.dumps(sign_threshold_bundle(registry.bundle(version=1), [root_key]).to_json()))
    # The online side claims nothing changed but the version; the payload adds an issuing key.
    bundle_request(v1, tmp_path / "request.json", summary=["trust bundle v2 for JP (replaces v1)"])
    registry.issuing = type(registry.issuing).generate()
    new = registry.bundle(version=2)
    lying = SigningRequest.create(
        Kind.BUNDLE,
        unsigned_threshold_bundle(new),
        ["trust bundle v2 for JP (replaces v1)", "nothing else changes"],
        created=NOW,
    )
    (tmp_path / "request.json").write_text(json.dumps(lying.to_json()))

    run = run_cli(
        [
            "root",
            "sign",
            str(tmp_path / "request.json"),
            "--key",
            str(media / "root-key-1.pem"),
            "--out",
            str(tmp_path / "sig.json"),
            "--previous",
            str(previous),
        ],
        input="n\n",
    )

    shown = " ".join(run.stdout.split())
    assert "NOT CONFIRMED HERE nothing else changes" in shown
    assert f"NOT IN THE REQUEST'S SUMMARY adds issuing key {registry.issuing.kid}" in shown
    assert not (tmp_path / "sig.json").exists()


def test_init_never_overwrites_a_root(tmp_path: Path) -> None:
    init_root(tmp_path, keys=1, threshold=1)
    run = run_cli(["root", "init", "--out", str(tmp_path), "--jurisdiction", "JP"])
    assert run.exit_code == exits.PRECONDITION
    assert "exists" in run.stderr


def test_a_root_key_in_a_token_signs_with_its_pin_from_a_file(
    tmp_path: Path, softhsm: SoftHsm, token: ScratchToken
) -> None:
    uri, _ = generate_key_pair(token.key_uri("root-1"), "EdDSA", softhsm.config)
    media = tmp_path / "media"
    run = run_cli(["root", "init", "--out", str(media), "--jurisdiction", "JP", "--key", str(uri), "--json"])
    assert run.exit_code == exits.OK, run.stderr
    assert run.json()["key_files"] == []
    v1 = RootDocument.parse(json.loads((media / "root-v1.json").read_text()))
    bundle_request(v1, tmp_path / "request.json")

    run = run_cli(
        [
            "root",
            "sign",
            str(tmp_path / "request.json"),
            "--key",
            str(uri),
            "--out",
            str(tmp_path / "sig.json"),
            "--yes",
        ]
    )
    assert run.exit_code == exits.OK, run.stderr

    wrong = Path(str(token.pin_file) + ".wrong")
    wrong.write_text("000000")
    wrong.chmod(0o600)
    Pkcs11Module.load(softhsm.module_path).reload()  # log out, so the wrong PIN is tried
    bad = str(uri).replace(str(token.pin_file), str(wrong))
    run = run_cli(
        [
            "root",
            "sign",
            str(tmp_path / "request.json"),
            "--key",
            bad,
            "--out",
            str(tmp_path / "sig2.json"),
            "--yes",
        ]
    )
    assert run.exit_code == exits.FAILURE
    assert "wrong_pin" in run.stderr
    assert not (tmp_path / "sig2.json").exists()
