"""Keys: Ed25519 (EdDSA, RFC 8037) and P-256 (ES256), as JWKs with RFC 7638 thumbprints.

The primitives are pyca/cryptography's. An Ed25519 signature is verified by
the key object itself (the JWS signature is the raw RFC 8032 signature, and a
verification is the hot path of every node); ES256 goes through PyJWT's
algorithm object, which converts the JWS ``r || s`` form to DER. Private keys
are written as PKCS#8 PEM files with mode 0600, atomically (temporary file in
the same directory, fsync, ``os.replace``), and refused on read when others
may read them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm

from clearance.encoding import b64url_decode, b64url_encode, canonical_json
from clearance.errors import MalformedError, Reason, StorageError, VerificationError

Alg = Literal["EdDSA", "ES256"]
"""The algorithms we sign with. ``EdDSA`` stays our name for Ed25519 signatures: every JOSE
library reads it, while the fully-specified ``Ed25519`` (RFC 9864) is not yet read by all."""
ALLOWED_ALGS: frozenset[str] = frozenset({"EdDSA", "Ed25519", "ES256"})
"""The ``alg`` values we accept on input: ``Ed25519`` (RFC 9864) names what ``EdDSA`` names here."""
_SAME_ALG = {"Ed25519": "EdDSA"}


def alg_matches(alg: object, key_alg: Alg) -> bool:
    """Whether a header's ``alg`` names the algorithm of a key whose ``alg`` is ``key_alg``.

    ``Ed25519`` (RFC 9864, fully specified) and ``EdDSA`` (RFC 8037) both name an Ed25519
    signature; nothing else is an alias.
    """
    if not isinstance(alg, str):
        return False
    return _SAME_ALG.get(alg, alg) == key_alg


_ES256 = ECAlgorithm(ECAlgorithm.SHA256)
_PUBLIC_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

PublicKeyObject = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKeyObject = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public OKP or EC key.

    Raises:
        MalformedError: the key type is not one we support or a member is missing.
    """
    members = _PUBLIC_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(not isinstance(jwk.get(m), str) for m in members):
        raise MalformedError("JWK is not a complete OKP or EC public key")
    required = {m: jwk[m] for m in members}
    return b64url_encode(hashlib.sha256(canonical_json(required)).digest())


def _verify_es256(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    return _ES256.verify(message, key, signature)


class PublicKey:
    """A public key we can verify signatures with. Immutable.

    Build one with :meth:`from_jwk` (input from outside) or from a
    :class:`SigningKey`.
    """

    __slots__ = ("_jwk", "_key", "_thumbprint", "_verify", "alg")
    _key: PublicKeyObject
    _jwk: dict[str, str]
    _thumbprint: str | None
    _verify: Callable[[bytes, bytes], object]
    """``verify(signature, message)``: raises InvalidSignature, or returns False, when it fails."""
    alg: Alg

    def __init__(self, key: PublicKeyObject) -> None:
        if isinstance(key, ed25519.Ed25519PublicKey):
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self._init(key, "EdDSA", key.verify, {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)})
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            numbers = key.public_numbers()
            jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url_encode(numbers.x.to_bytes(32, "big")),
                "y": b64url_encode(numbers.y.to_bytes(32, "big")),
            }
            self._init(key, "ES256", functools.partial(_verify_es256, key), jwk)
        else:
            raise MalformedError("only Ed25519 and P-256 keys are supported")

    def _init(
        self, key: PublicKeyObject, alg: Alg, verify: Callable[[bytes, bytes], object], jwk: dict[str, str]
    ) -> None:
        self._key = key
        self.alg = alg
        self._verify = verify
        self._jwk = jwk
        self._thumbprint = None

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint, the key's ``kid``.

        Computed when first asked for: a presentation's holder key is used to verify one
        signature and its thumbprint is rarely needed.
        """
        thumbprint = self._thumbprint
        if thumbprint is None:
            thumbprint = self._thumbprint = jwk_thumbprint(self._jwk)
        return thumbprint

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK with its ``kid`` (a new dict on every call)."""
        return {**self._jwk, "kid": self.thumbprint}

    @property
    def bare_jwk(self) -> dict[str, str]:
        """The public JWK's key members only, as ``cnf.jwk`` carries it (a new dict on every call).

        Needs no thumbprint, so it costs no hash.
        """
        return dict(self._jwk)

    @classmethod
    def from_jwk(cls, jwk: Any) -> PublicKey:
        """Parse a public JWK from outside.

        Raises:
            MalformedError: not an object, private members present, an
                unsupported key type or curve, or a point not on the curve.
        """
        if not isinstance(jwk, dict):
            raise MalformedError("JWK is not a JSON object")
        if not _PRIVATE_MEMBERS.isdisjoint(jwk):
            raise MalformedError("JWK carries private key material")
        kty, crv = jwk.get("kty"), jwk.get("crv")
        x, y = jwk.get("x"), jwk.get("y")
        if not isinstance(x, str) or (kty == "EC" and not isinstance(y, str)):
            raise MalformedError("JWK lacks its coordinates")
        try:
            if kty == "OKP" and crv == "Ed25519":
                raw = b64url_decode(x, what="JWK x")
                if len(raw) != 32:
                    raise MalformedError("Ed25519 JWK x must be 32 bytes")
                # x was decoded strictly, so it is the canonical encoding __init__ would make.
                key = cls.__new__(cls)
                ed = ed25519.Ed25519PublicKey.from_public_bytes(raw)
                key._init(ed, "EdDSA", ed.verify, {"kty": "OKP", "crv": "Ed25519", "x": x})
                return key
            if kty == "EC" and crv == "P-256" and isinstance(y, str):
                xb, yb = b64url_decode(x, what="JWK x"), b64url_decode(y, what="JWK y")
                if len(xb) != 32 or len(yb) != 32:
                    raise MalformedError("P-256 JWK coordinates must be 32 bytes")
                numbers = ec.EllipticCurvePublicNumbers(
                    int.from_bytes(xb, "big"), int.from_bytes(yb, "big"), ec.SECP256R1()
                )
                return cls(numbers.public_key())
        except ValueError as exc:
            raise MalformedError("JWK point is not on the curve") from exc
        raise MalformedError(f"unsupported JWK key type {str(kty)!r}/{str(crv)!r}")

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check ``signature`` over ``message``.

        Raises:
            VerificationError: the signature does not verify (``bad_signature``).
        """
        try:
            ok = self._verify(signature, message)
        except (InvalidSignature, ValueError) as exc:
            raise VerificationError(Reason.BAD_SIGNATURE, "signature does not verify") from exc
        if ok is False:
            raise VerificationError(Reason.BAD_SIGNATURE, "signature does not verify")

    def to_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM (for TLS tooling and humans)."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.thumbprint == self.thumbprint

    def __hash__(self) -> int:
        return hash(self.thumbprint)

    def __repr__(self) -> str:
        return f"PublicKey({self.alg}, {self.thumbprint})"


@runtime_checkable
class Signer(Protocol):
    """What signing needs, and no more: a key that signs wherever its private half lives.

    A file key (:class:`SigningKey`) and a key in a PKCS#11 token
    (:class:`clearance.pkcs11.Pkcs11Signer`) both satisfy it. ``sign`` returns
    the JWS signature itself: the raw RFC 8032 signature for ``EdDSA``, the raw
    ``r || s`` (64 bytes) for ``ES256``.
    """

    @property
    def alg(self) -> Alg:
        """The JWS ``alg`` of the signatures this key makes."""
        ...

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint of the public key."""
        ...

    @property
    def public(self) -> PublicKey:
        """The public half, to verify with and to publish."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (the JWS signing input).

        Raises:
            ClearanceError: the key could not sign (a token error, say); nothing was signed.
        """
        ...


class SigningKey:
    """A private key that signs: Ed25519 by default, P-256 for ES256 holders. A :class:`Signer`."""

    __slots__ = ("_key", "public")

    def __init__(self, key: PrivateKeyObject) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
            raise MalformedError("only the P-256 curve is supported")
        self._key = key
        self.public = PublicKey(key.public_key())

    @classmethod
    def generate(cls, alg: Alg = "EdDSA") -> SigningKey:
        """A new random key for ``alg`` (``EdDSA`` or ``ES256``)."""
        if alg == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate())
        if alg == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        raise MalformedError(f"unsupported algorithm {alg!r}")

    @property
    def alg(self) -> Alg:
        return self.public.alg

    @property
    def kid(self) -> str:
        return self.public.thumbprint

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``; ES256 signatures are raw ``r || s`` as JWS wants."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        return _ES256.sign(message, self._key)

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM; protect it with file permissions (:func:`write_private_key`)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load a PKCS#8 PEM private key.

        Raises:
            MalformedError: not a PEM private key of a supported type.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise MalformedError("not an unencrypted PEM private key") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise MalformedError("only Ed25519 and P-256 private keys are supported")
        return cls(key)

    @classmethod
    def from_private_jwk(cls, jwk: Any) -> SigningKey:
        """Load a private JWK (Ed25519 or P-256) as written by :meth:`private_jwk`.

        Raises:
            MalformedError: not a private OKP/EC JWK of a supported curve, or the
                private key does not match the public members.
        """
        if not isinstance(jwk, dict) or not isinstance(jwk.get("d"), str):
            raise MalformedError("not a private JWK")
        d = b64url_decode(jwk["d"], what="JWK d")
        try:
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and len(d) == 32:
                key = cls(ed25519.Ed25519PrivateKey.from_private_bytes(d))
            elif jwk.get("kty") == "EC" and jwk.get("crv") == "P-256" and len(d) == 32:
                key = cls(ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1()))
            else:
                raise MalformedError("unsupported private JWK")
        except ValueError as exc:
            raise MalformedError("invalid private key") from exc
        public = {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}
        if public and jwk_thumbprint(public) != key.kid:
            raise MalformedError("private JWK does not match its public members")
        return key

    def private_jwk(self) -> dict[str, str]:
        """The JWK including the private member ``d`` (for wallets that keep JWKs)."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            d = self._key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        else:
            d = self._key.private_numbers().private_value.to_bytes(32, "big")
        return {**self.public.jwk, "d": b64url_encode(d)}

    def __repr__(self) -> str:
        return f"SigningKey({self.alg}, {self.kid})"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically with permissions ``mode``.

    The file is written beside its destination, flushed to disk, then renamed
    over it, so a reader sees either the old or the new content, never half.

    Raises:
        StorageError: the file could not be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from exc


def write_private_key(path: Path, key: SigningKey) -> None:
    """Write ``key`` as PEM to ``path``: mode 0600, atomically.

    Raises:
        StorageError: the file could not be written.
    """
    atomic_write(path, key.to_pem(), mode=0o600)


def read_private_key(path: Path) -> SigningKey:
    """Read a private key file, refusing one that others may read.

    Raises:
        StorageError: missing, unreadable, or readable by group or others.
        MalformedError: the content is not a supported private key.
    """
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise StorageError(
                f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                "run: chmod 600 " + str(path)
            )
        return SigningKey.from_pem(path.read_bytes())
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from exc


def jwks(keys: list[PublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set (RFC 7517 section 5) of public keys, each with its ``alg`` and ``kid``."""
    return {"keys": [{**k.jwk, "alg": k.alg, "use": "sig"} for k in keys]}
