"""Keys: JWKs, RFC 7638 thumbprints, signatures, and private key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from clearance.encoding import b64url_decode, b64url_encode
from clearance.errors import MalformedError, Reason, StorageError
from clearance.keys import (
    PublicKey,
    SigningKey,
    atomic_write,
    jwk_thumbprint,
    jwks,
    read_private_key,
    write_private_key,
)
from tests.factories import refused

# RFC 8037 appendix A: an Ed25519 key, its thumbprint and a signature made with it.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"


def rfc8037_key() -> SigningKey:
    return SigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D)))


# -- thumbprints and JWKs -----------------------------------------------------------


def test_thumbprint_matches_rfc8037_appendix_a3() -> None:
    assert jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}) == RFC8037_THUMBPRINT


def test_thumbprint_ignores_members_outside_the_required_set() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "mine", "use": "sig", "alg": "EdDSA"}
    assert jwk_thumbprint(jwk) == RFC8037_THUMBPRINT


def test_key_from_rfc8037_private_key_has_its_public_key_and_thumbprint_as_kid() -> None:
    key = rfc8037_key()
    assert key.public.jwk == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": RFC8037_THUMBPRINT}
    assert key.kid == RFC8037_THUMBPRINT
    assert key.alg == "EdDSA"


def test_signing_reproduces_the_rfc8037_appendix_a4_signature() -> None:
    assert b64url_encode(rfc8037_key().sign(RFC8037_SIGNING_INPUT)) == RFC8037_SIGNATURE


def test_public_jwk_verifies_the_rfc8037_signature_and_nothing_else() -> None:
    public = PublicKey.from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    public.verify(b64url_decode(RFC8037_SIGNATURE), RFC8037_SIGNING_INPUT)
    with refused(Reason.BAD_SIGNATURE):
        public.verify(b64url_decode(RFC8037_SIGNATURE), RFC8037_SIGNING_INPUT + b"x")


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_generated_keys_sign_and_their_jwk_verifies(alg: str) -> None:
    key = SigningKey.generate(alg)  # type: ignore[arg-type]
    assert key.alg == alg
    public = PublicKey.from_jwk(dict(key.public.jwk))
    assert public == key.public
    assert hash(public) == hash(key.public)
    public.verify(key.sign(b"message"), b"message")
    with refused(Reason.BAD_SIGNATURE):
        public.verify(key.sign(b"message"), b"another message")


def test_es256_signatures_are_raw_r_and_s_as_jws_requires() -> None:
    assert len(SigningKey.generate("ES256").sign(b"m")) == 64


def test_a_signature_by_another_key_does_not_verify() -> None:
    with refused(Reason.BAD_SIGNATURE):
        SigningKey.generate().public.verify(SigningKey.generate().sign(b"m"), b"m")


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param(["not", "an", "object"], id="not-an-object"),
        pytest.param({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D}, id="private-member"),
        pytest.param({"kty": "RSA", "n": "AQAB", "e": "AQAB", "x": "AA"}, id="rsa"),
        pytest.param({"kty": "OKP", "crv": "Ed448", "x": RFC8037_X}, id="ed448"),
        pytest.param({"kty": "OKP", "crv": "Ed25519"}, id="no-x"),
        pytest.param({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X[:-2]}, id="short-x"),
        pytest.param({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X + "="}, id="padded-x"),
        pytest.param({"kty": "EC", "crv": "P-256", "x": b64url_encode(bytes(32))}, id="ec-no-y"),
        pytest.param(
            {"kty": "EC", "crv": "P-256", "x": b64url_encode(bytes(32)), "y": b64url_encode(bytes(32))},
            id="ec-point-not-on-curve",
        ),
        pytest.param(
            {"kty": "EC", "crv": "P-384", "x": b64url_encode(bytes(48)), "y": b64url_encode(bytes(48))},
            id="p384",
        ),
    ],
)
def test_jwk_from_outside_is_refused_unless_a_complete_supported_public_key(jwk: object) -> None:
    with refused(Reason.MALFORMED):
        PublicKey.from_jwk(jwk)


def test_thumbprint_refuses_an_incomplete_key() -> None:
    with refused(Reason.MALFORMED):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})


def test_only_p256_among_curves_signs() -> None:
    with refused(Reason.MALFORMED):
        SigningKey(ec.generate_private_key(ec.SECP384R1()))


def test_jwks_lists_each_key_with_alg_and_use() -> None:
    ed, p256 = SigningKey.generate(), SigningKey.generate("ES256")
    keys = jwks([ed.public, p256.public])["keys"]
    assert [(k["kid"], k["alg"], k["use"]) for k in keys] == [
        (ed.kid, "EdDSA", "sig"),
        (p256.kid, "ES256", "sig"),
    ]
    assert all("d" not in k for k in keys)


def test_private_jwk_carries_d_and_matches_the_public_key() -> None:
    private = rfc8037_key().private_jwk()
    assert private["d"] == RFC8037_D
    assert private["x"] == RFC8037_X


# -- PEM and key files ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_pem_round_trips(alg: str) -> None:
    key = SigningKey.generate(alg)  # type: ignore[arg-type]
    assert SigningKey.from_pem(key.to_pem()).kid == key.kid
    assert b"PUBLIC KEY" in key.public.to_pem()


def test_pem_of_an_unsupported_key_type_is_refused() -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with refused(Reason.MALFORMED):
        SigningKey.from_pem(pem)


@pytest.mark.parametrize(
    "pem", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_pem_that_is_not_a_private_key_is_refused(pem: bytes) -> None:
    with pytest.raises(MalformedError):
        SigningKey.from_pem(pem)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_is_written_0600_and_reads_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "keys" / "root.pem"
    write_private_key(path, key)
    assert mode_of(path) == 0o600
    assert read_private_key(path).kid == key.kid


def test_key_file_replacing_a_world_readable_file_ends_0600(tmp_path: Path) -> None:
    path = tmp_path / "issuing.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private_key(path, SigningKey.generate())
    assert mode_of(path) == 0o600


def test_key_file_is_replaced_atomically_so_a_reader_never_sees_half_a_key(tmp_path: Path) -> None:
    path = tmp_path / "issuing.pem"
    old, new = SigningKey.generate(), SigningKey.generate()
    write_private_key(path, old)
    old_inode = path.stat().st_ino
    with path.open("rb") as reader:
        write_private_key(path, new)
        # The old file was renamed over, not truncated and rewritten in place.
        assert reader.read() == old.to_pem()
    assert path.stat().st_ino != old_inode
    assert read_private_key(path).kid == new.kid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issuing.pem"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(StorageError):
        write_private_key(target, SigningKey.generate())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]
    assert list(target.iterdir()) == []


def test_atomic_write_sets_the_mode_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "bundle.jwt"
    atomic_write(path, b"data", mode=0o640)
    assert path.read_bytes() == b"data"
    assert mode_of(path) == 0o640


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o707])
def test_key_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "root.pem"
    write_private_key(path, SigningKey.generate())
    path.chmod(mode)
    with pytest.raises(StorageError, match="chmod 600"):
        read_private_key(path)


def test_owner_only_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "root.pem"
    key = SigningKey.generate()
    write_private_key(path, key)
    path.chmod(0o400)
    assert read_private_key(path).kid == key.kid


def test_missing_key_file_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        read_private_key(tmp_path / "absent.pem")


def test_key_file_with_garbage_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "root.pem"
    atomic_write(path, b"garbage", mode=0o600)
    with pytest.raises(MalformedError):
        read_private_key(path)


def test_umask_does_not_loosen_key_files(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        write_private_key(tmp_path / "root.pem", SigningKey.generate())
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "root.pem") == 0o600
