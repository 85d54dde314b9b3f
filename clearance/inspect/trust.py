"""Trust material for inspection: ``--root`` (a root key or its thumbprint) and ``--jwks`` (issuing keys).

A trust bundle given as issuing keys is itself checked (under the root if one
was given, else under its own header key) before its keys are used.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearance.encoding import parse_json_object
from clearance.errors import InvalidArgumentError, MalformedError, Reason, VerificationError

if TYPE_CHECKING:
    from clearance.bundle import TrustBundle
    from clearance.inspect.report import Report
    from clearance.jws import CompactJWS
    from clearance.keys import PublicKey

MAX_TRUST_FILE_BYTES = 1024 * 1024
"""Cap for ``--root`` and ``--jwks`` files (a trust bundle is at most 512 KiB)."""

_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class TrustedRoot:
    """``--root``: a root public key, or only its RFC 7638 thumbprint (``key`` is then None)."""

    thumbprint: str
    key: PublicKey | None = None


@dataclass(frozen=True, slots=True)
class IssuingKeys:
    """``--jwks``: issuing keys by thumbprint, from a JWK Set or from a trust bundle."""

    keys: Mapping[str, PublicKey]
    source: str
    bundle: TrustBundle | None = None

    def key(self, kid: str | None, what: str) -> PublicKey:
        """The key named ``kid``.

        Raises:
            VerificationError: no such key (``unknown_key``).
        """
        key = self.keys.get(kid) if kid is not None else None
        if key is None:
            raise VerificationError(
                Reason.UNKNOWN_KEY,
                f"{what} is signed by key {str(kid)[:64]!r}, which is not in {self.source}",
            )
        return key


@dataclass(slots=True)
class Trust:
    """Everything the user trusts for this run, and the time to check validity at."""

    at: int
    root: TrustedRoot | None = None
    issuing: IssuingKeys | None = None
    problem: VerificationError | None = None
    """Why the ``--jwks`` trust bundle was refused (checked before any anchored check)."""

    @property
    def given(self) -> bool:
        return self.root is not None or self.issuing is not None or self.problem is not None

    def require_root(self, what: str) -> TrustedRoot:
        """The ``--root``.

        Raises:
            VerificationError: none given (``unknown_key``): fail closed.
        """
        if self.root is None:
            raise VerificationError(Reason.UNKNOWN_KEY, f"{what} is signed by a root key: give --root")
        return self.root

    def require_issuing(self, what: str) -> IssuingKeys:
        """The ``--jwks`` keys.

        Raises:
            VerificationError: none given (``unknown_key``): fail closed.
        """
        if self.issuing is None:
            raise VerificationError(
                Reason.UNKNOWN_KEY,
                f"{what} is signed by an issuing key: give --jwks (a JWK Set or the issuer's trust bundle)",
            )
        return self.issuing


def load_trust(root: str | None, jwks: Path | None, at: int) -> Trust:
    """Read ``--root`` and ``--jwks``.

    A trust bundle given as ``--jwks`` that does not verify (under ``--root``
    if given, else under its own header key) or has expired at ``at`` is kept
    as :attr:`Trust.problem`: every anchored check then refuses.

    Raises:
        InvalidArgumentError: a file that is unreadable or holds no usable key.
    """
    trust = Trust(at, load_root(root) if root is not None else None)
    if jwks is not None:
        try:
            trust.issuing = load_issuing_keys(jwks, trust.root, at)
        except MalformedError as exc:
            raise InvalidArgumentError("--jwks", exc.detail) from exc
        except VerificationError as exc:
            trust.problem = VerificationError(exc.reason, f"--jwks trust bundle refused: {exc.detail}")
    return trust


def load_root(value: str) -> TrustedRoot:
    """Parse ``--root``: a JWK or PEM public key file, or a bare thumbprint.

    Raises:
        InvalidArgumentError: neither, or a file without a supported public key.
    """
    path = Path(value)
    if path.is_file():
        data = _read_trust_file(path, "--root")
        with _option_error("--root"):
            if data.lstrip().startswith(b"-----BEGIN"):
                key = _public_key_from_pem(data)
            else:
                key = _public_key_from_jwk(parse_json_object(data, what="JWK"))
        return TrustedRoot(key.thumbprint, key)
    if _THUMBPRINT.fullmatch(value):
        return TrustedRoot(value)
    raise InvalidArgumentError(
        "--root", "not a JWK or PEM public key file, nor an RFC 7638 thumbprint (43 base64url characters)"
    )


def load_issuing_keys(path: Path, root: TrustedRoot | None, at: int) -> IssuingKeys:
    """Parse ``--jwks``: a JWK Set, or a trust bundle whose issuing keys are used.

    Raises:
        InvalidArgumentError: the file cannot be read.
        MalformedError: neither a JWK Set nor a trust bundle.
        VerificationError: a trust bundle that does not verify or has expired at ``at``.
    """
    data = _read_trust_file(path, "--jwks")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise MalformedError("not a JWK Set nor a trust bundle (not UTF-8 text)") from exc
    if text.startswith("{"):
        keys = parse_json_object(text, what="JWK Set").get("keys")
        if not isinstance(keys, list) or not keys:
            raise MalformedError("not a JWK Set (no keys array) nor a trust bundle")
        parsed = [_public_key_from_jwk(jwk) for jwk in keys]
        return IssuingKeys({k.thumbprint: k for k in parsed}, f"the JWK Set {path.name}")
    from clearance.bundle import TrustBundle

    try:
        bundle, jws = TrustBundle.parse(text)
    except VerificationError as exc:
        if exc.reason is not Reason.WRONG_TYPE:
            raise
        raise MalformedError("not a JWK Set nor a trust bundle") from exc
    if root is not None:
        verify_bundle_under_root(text, jws, root)
    else:
        bundle_header_key(bundle, jws)
    if bundle.expires_at <= at:
        raise VerificationError(Reason.BUNDLE_EXPIRED, f"trust bundle v{bundle.version} has expired at {at}")
    return IssuingKeys(
        {entry.key.thumbprint: entry.key for entry in bundle.issuing_keys},
        f"the {bundle.jurisdiction} trust bundle v{bundle.version}",
        bundle,
    )


def _read_trust_file(path: Path, option: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TRUST_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidArgumentError(option, f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_TRUST_FILE_BYTES:
        raise InvalidArgumentError(option, f"{path} is larger than {MAX_TRUST_FILE_BYTES} bytes")
    return data


@contextlib.contextmanager
def _option_error(option: str) -> Iterator[None]:
    """Report unusable trust material as a usage error naming the option."""
    try:
        yield
    except MalformedError as exc:
        raise InvalidArgumentError(option, exc.detail) from exc


def _public_key_from_jwk(jwk: Any) -> PublicKey:
    """A public JWK whose ``kid``, if present, is its RFC 7638 thumbprint (as ours always are).

    Raises:
        MalformedError: not a supported public JWK, or a ``kid`` naming another key.
    """
    from clearance.keys import PublicKey

    key = PublicKey.from_jwk(jwk)
    kid = jwk.get("kid")
    if kid is not None and kid != key.thumbprint:
        raise MalformedError(f"JWK kid {str(kid)[:64]!r} is not its RFC 7638 thumbprint {key.thumbprint}")
    return key


def _public_key_from_pem(data: bytes) -> PublicKey:
    """A SubjectPublicKeyInfo PEM public key (Ed25519 or P-256).

    Raises:
        MalformedError: not a PEM public key of a supported type.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from clearance.keys import PublicKey

    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedError("not a PEM public key") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise MalformedError("only Ed25519 and P-256 public keys are supported")
    return PublicKey(key)


# -- trust bundles (an artifact, and a source of issuing keys) ------------------


def bundle_header_key(bundle: TrustBundle, jws: CompactJWS) -> PublicKey | None:
    """The root key in a bundle's header, checked to be the root it names and to have signed it.

    Returns None when the header carries no ``jwk`` (then only ``--root`` can check it).

    Raises:
        MalformedError: the header ``jwk`` is not a public key.
        VerificationError: the key is not the bundle's ``kid``/``root`` (``root_mismatch``)
            or its signature does not verify.
    """
    from clearance.jws import verify_compact
    from clearance.keys import PublicKey

    if "jwk" not in jws.header:
        return None
    key = PublicKey.from_jwk(jws.header["jwk"])
    if jws.kid != key.thumbprint or bundle.root != key.thumbprint:
        raise VerificationError(
            Reason.ROOT_MISMATCH, "trust bundle header key is not the root its kid and payload name"
        )
    verify_compact(jws, key, what="trust bundle")
    return key


def verify_bundle_under_root(token: str, jws: CompactJWS, root: TrustedRoot) -> None:
    """Check that ``root`` (a key, or a thumbprint matching the header key) signed the bundle.

    Raises:
        VerificationError: another root (``root_mismatch``) or a bad signature.
    """
    from clearance.bundle import TrustBundle

    key = root.key
    if key is None:
        try:
            key = TrustBundle.header_root(token)
        except MalformedError as exc:
            raise VerificationError(
                Reason.UNKNOWN_KEY,
                f"trust bundle header has no usable root key ({exc.detail}): give --root as a key file",
            ) from exc
        if key.thumbprint != root.thumbprint:
            raise VerificationError(Reason.ROOT_MISMATCH, "trust bundle is not signed by the trusted root")
    TrustBundle.verify(token, key)


def check_x5c(
    header: Mapping[str, Any], issuing: IssuingKeys, kid: str | None, at: int, report: Report
) -> None:
    """The HAIP profile's ``x5c`` chain, as a node checks it: against the bundle's issuer CAs.

    Raises:
        VerificationError: the chain does not reach a CA of the bundle, certifies another key,
            is not valid at ``at`` or has the wrong key usage.
    """
    from clearance.certificates import verify_x5c

    if "x5c" not in header:
        return
    if issuing.bundle is None:
        report.not_checked.append(
            "x5c chain: not checked (needs the trust bundle's issuer CAs, not a JWK Set)"
        )
        return
    verify_x5c(header["x5c"], issuing.bundle.issuer_cas, issuing.key(kid, "the x5c leaf"), at)
    report.passed.append(f"x5c chain certifies {kid} and reaches an issuer CA of {issuing.source}")
