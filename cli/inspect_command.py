"""``clearance inspect``: decode any clearance artifact and, given trust material, verify it.

The kind is recognized from the content, never from the file name:

=================================  ===========================================
input                              kind
=================================  ===========================================
``<jwt>~<disclosure>~...~``        ``personnel_credential`` / ``facility_credential``
``<jwt>~<disclosure>~...~<kb>``    ``presentation`` (SD-JWT with a key-binding JWT)
compact JWS ``statuslist+jwt``     ``status_list_token``
compact JWS ``clearance-status-delta+jwt``  ``status_delta``
compact JWS ``clearance-bundle+jwt``  ``trust_bundle``
compact JWS ``clearance-visit+jwt``   ``visit_assurance``
JSON ``{"bits", "lst"}``           ``status_list`` (bare, unsigned)
JWS JSON ``clearance-agreement+jws``  ``agreement``
JWS JSON ``clearance-root+jws``    ``root_rotation``
=================================  ===========================================

Checks come in two layers:

* **Self-contained** checks need no trust root and always run: strict
  encoding, size caps, the algorithm allow-list, status list inflation,
  disclosures against their digests, the key-binding JWT against the
  credential's own ``cnf.jwk``, and signatures by keys the artifact names
  itself (an agreement's parties, a bundle's header key, a rotation's new
  root). Failing one means the artifact can never be valid: it is refused
  (exit 3) whether or not trust material was given.
* **Anchored** checks run when ``--root`` or ``--jwks`` is given: the
  signature by a key the user trusts, and validity at ``--at``. Trust
  material that cannot vouch for the artifact (``--jwks`` for a bundle, any
  key for a bare list, which is unsigned) refuses rather than passes.

Never checked here: a presentation's nonce (only the verifier that issued it
can tell whether it is fresh), a credential's status (inspect its list), and
whether a visit assurance names the person presenting it and this host (only
the host node, holding the visitor's presentation, can tell).

Heavy modules (the trust core pulls in cryptography) are imported inside the
functions that need them, so ``clearance --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from clearance.encoding import MAX_JSON_DEPTH, b64url_decode, parse_json_object
from clearance.errors import InvalidArgumentError, MalformedError, Reason, VerificationError
from cli import output

if TYPE_CHECKING:
    from clearance.agreement import Agreement
    from clearance.bundle import RootRotation, TrustBundle
    from clearance.credentials import CredentialClaims
    from clearance.jws import CompactJWS
    from clearance.keys import PublicKey
    from clearance.sdjwt import SdJwtParts
    from clearance.statusdelta import StatusDelta
    from clearance.statuslist import StatusList, StatusListToken
    from clearance.visit import VisitAssurance

MAX_INPUT_BYTES = 4 * 1024 * 1024 + 1024
"""The largest artifact (a status list token, ``clearance.statuslist.MAX_TOKEN_BYTES``) plus white space."""
MAX_TRUST_FILE_BYTES = 1024 * 1024
"""Cap for ``--root`` and ``--jwks`` files (a trust bundle is at most 512 KiB)."""
MAX_NON_ZERO_LISTED = 1_000_000
"""Entries of ``non_zero`` printed at most; beyond it ``non_zero_truncated`` is set (counts stay exact)."""

_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
_TIME_CLAIMS = frozenset({"iat", "nbf", "exp", "at"})


# -- trust material given on the command line ----------------------------------


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
        _verify_bundle_under_root(text, jws, root)
    else:
        _bundle_header_key(bundle, jws)
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


def _bundle_header_key(bundle: TrustBundle, jws: CompactJWS) -> PublicKey | None:
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


def _verify_bundle_under_root(token: str, jws: CompactJWS, root: TrustedRoot) -> None:
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


# -- the report -----------------------------------------------------------------


@dataclass(slots=True)
class Report:
    """What inspection found, filled in as it goes so that a refusal still shows what was decoded."""

    at: int
    kind: str = "unknown"
    fields: dict[str, Any] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    anchored: str | None = None
    """What a successful verdict rests on; None until anchored checks passed."""
    unanchored: str = "no --root or --jwks given"
    failure: VerificationError | None = None

    def verification(self) -> dict[str, Any]:
        if self.failure is not None:
            checked, valid = True, False
            reason: str | None = self.failure.reason.value
            detail: str | None = self.failure.detail
        elif self.anchored is not None:
            checked, valid, reason, detail = True, True, None, self.anchored
        else:
            checked, valid, reason, detail = False, None, None, self.unanchored
        return {
            "checked": checked,
            "valid": valid,
            "reason": reason,
            "detail": detail,
            "passed": list(self.passed),
            "not_checked": list(self.not_checked),
        }

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, **self.fields, "verification": self.verification()}


def render(report: Report) -> str:
    """The report for humans: decoded fields (not the raw signed payload), checks, verdict."""
    shown = {k: v for k, v in report.fields.items() if k != "payload"}
    lines = [
        f"{output.heading('kind:')} {report.kind.replace('_', ' ')}",
        f"at: {_with_date(report.at)}",
    ]
    if shown:
        lines.append(output.key_values({k.replace("_", " "): v for k, v in _dated(shown).items()}))
    for title, checks in (("passed:", report.passed), ("not checked:", report.not_checked)):
        if checks:
            lines.append(title)
            lines.extend(f"  - {output.printable(check)}" for check in checks)
    verdict = report.verification()
    if verdict["valid"] is True:
        word = output.status_word("yes", True)
        because = verdict["detail"]
    elif verdict["valid"] is False:
        word = output.status_word("no", False)
        because = f"{verdict['reason']}: {verdict['detail']}"
    else:
        word = output.status_word("not checked", None)
        because = verdict["detail"]
    lines.append(f"{output.heading('verified:')} {word} ({output.printable(because)})")
    return "\n".join(lines)


def _with_date(value: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return str(value)
    return f"{value} ({moment.strftime('%Y-%m-%dT%H:%M:%SZ')})"


def _dated(data: Any) -> Any:
    """A copy of ``data`` where integer ``iat``/``nbf``/``exp`` also show their UTC date."""
    if isinstance(data, Mapping):
        return {
            k: _with_date(v) if k in _TIME_CLAIMS and type(v) is int else _dated(v) for k, v in data.items()
        }
    if isinstance(data, list):
        return [_dated(v) for v in data]
    return data


# -- kinds ------------------------------------------------------------------------


class Inspector:
    """One kind of artifact: decode it with its self-contained checks, then verify it against trust."""

    kind = "unknown"
    anchor = "nothing to verify"
    """What anchored verification of this kind needs (shown when no trust was given)."""

    def decode(self, report: Report) -> None:
        """Decode into ``report`` and run the self-contained checks.

        Raises:
            VerificationError: the artifact can never be valid.
        """
        raise NotImplementedError

    def verify(self, trust: Trust, report: Report) -> str:
        """Run the anchored checks; return what the verdict rests on.

        Raises:
            VerificationError: the artifact does not verify against ``trust``.
        """
        raise NotImplementedError


_CREDENTIAL_KINDS = {"personnel": "personnel_credential", "facility": "facility_credential"}


class SdJwtInspector(Inspector):
    """A credential (SD-JWT VC) with or without disclosures, or a presentation (with a KB-JWT)."""

    anchor = "the issuer signature needs --jwks (a JWK Set or the issuer's trust bundle)"

    def __init__(self, text: str) -> None:
        from clearance.sdjwt import split

        self.parts: SdJwtParts = split(text)
        self.kind = "presentation" if self.parts.key_binding else "credential"
        self.jws: CompactJWS | None = None
        self.claims: CredentialClaims | None = None

    def decode(self, report: Report) -> None:
        from clearance.credentials import SD_JWT_VC_TYP, CredentialClaims
        from clearance.jws import decode_compact
        from clearance.sdjwt import Disclosure, digest, resolve_claims

        jws = self.jws = decode_compact(self.parts.jwt, what="credential", typ=SD_JWT_VC_TYP)
        from clearance.credentialtypes import kind_of

        named = kind_of(jws.payload.get("vct"), jws.payload.get("iss"))
        credential_kind = _CREDENTIAL_KINDS.get(named.value if named else "", "credential")
        if self.parts.key_binding is None:
            report.kind = credential_kind
        else:
            report.fields["credential_kind"] = credential_kind
        report.fields.update(header=jws.header, payload=jws.payload)
        resolved = resolve_claims(jws.payload, self.parts.disclosures, payload_json=jws.payload_json)
        if _nesting_depth(resolved) > MAX_JSON_DEPTH:
            # Each disclosure is capped like any JSON, but disclosures nest inside each other.
            raise MalformedError(
                f"disclosed claims nest deeper than {MAX_JSON_DEPTH} levels", Reason.TOO_DEEP
            )
        disclosed = [Disclosure.parse(d).name or "(array element)" for d in self.parts.disclosures]
        sd = jws.payload.get("_sd")
        hidden = set(sd) - {digest(d) for d in self.parts.disclosures} if isinstance(sd, list) else set()
        report.fields.update(claims=resolved, disclosed=disclosed, undisclosed_digests=len(hidden))
        report.passed.append(f"{len(disclosed)} disclosure(s) match digests the issuer signed")
        claims = self.claims = CredentialClaims.from_payload(resolved)
        state = (
            "not yet valid"
            if report.at < claims.not_before
            else "expired"
            if report.at >= claims.expires_at
            else "current"
        )
        report.fields.update(
            holder_key=claims.holder_key.thumbprint,
            status={"uri": claims.status.uri, "idx": claims.status.idx},
            validity={"nbf": claims.not_before, "exp": claims.expires_at, "state": state},
        )
        report.passed.append("claims have the shape of a clearance credential")
        if self.parts.key_binding is not None:
            self._decode_key_binding(self.parts.key_binding, claims, report)
        report.not_checked.append(
            f"status: inspect the status list {claims.status.uri} (index {claims.status.idx})"
        )

    def _decode_key_binding(self, token: str, claims: CredentialClaims, report: Report) -> None:
        from clearance.jws import decode_compact
        from clearance.sdjwt import verify_key_binding

        kb = decode_compact(token, what="key-binding JWT", max_bytes=4096)
        audience = kb.payload.get("aud")
        report.fields["key_binding"] = {
            "header": kb.header,
            "aud": audience,
            "nonce": kb.payload.get("nonce"),
            "iat": kb.payload.get("iat"),
            "sd_hash": kb.payload.get("sd_hash"),
            "nonce_freshness": "not checked",
        }
        if not isinstance(audience, str):
            raise VerificationError(Reason.KEY_BINDING_INVALID, "key-binding JWT aud is not a single string")
        verify_key_binding(self.parts, claims.holder_key, audience=audience)
        report.passed.append(
            "key-binding JWT is signed by the holder key (cnf.jwk) and covers exactly these disclosures"
        )
        report.not_checked.append(
            "nonce freshness: not checked (only the verifier that issued the nonce can tell)"
        )

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact
        from clearance.verify import DEFAULT_LEEWAY

        assert self.jws is not None
        assert self.claims is not None
        jws, claims = self.jws, self.claims
        issuing = trust.require_issuing("a credential")
        verify_compact(jws, issuing.key(jws.kid, "the credential"), what="credential")
        report.passed.append(f"issuer signature by {jws.kid} from {issuing.source}")
        _check_x5c(jws.header, issuing, jws.kid, trust.at, report)
        if issuing.bundle is not None:
            _check_against_bundle(claims, jws.kid, issuing.bundle)
            report.passed.append(f"issuer, key window, level and categories fit {issuing.source}")
        if trust.at + DEFAULT_LEEWAY < claims.not_before:
            raise VerificationError(Reason.NOT_YET_VALID, f"credential is not yet valid at {trust.at}")
        if trust.at >= claims.expires_at:
            raise VerificationError(Reason.EXPIRED, f"credential has expired at {trust.at}")
        return f"signed by issuing key {jws.kid} from {issuing.source}; valid at {trust.at}"


def _nesting_depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects (counted without recursion: it may be deep)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _check_x5c(
    header: dict[str, Any], issuing: IssuingKeys, kid: str | None, at: int, report: Report
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


def _check_against_bundle(claims: CredentialClaims, kid: str | None, bundle: TrustBundle) -> None:
    """What a node checks against the issuer's bundle, besides the signature.

    Raises:
        VerificationError: another issuer, a key outside its window, or a clearance
            the jurisdiction does not define.
    """
    if claims.issuer != bundle.issuer:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER, f"credential iss {claims.issuer[:80]!r} is not {bundle.issuer!r}"
        )
    if not bundle.issuing_key(kid).covers(claims.issued_at):
        raise VerificationError(Reason.KEY_NOT_VALID_AT_ISSUANCE, f"issuing key {kid} was not valid at iat")
    clearance = claims.clearance
    if clearance.jurisdiction != bundle.jurisdiction:
        raise VerificationError(
            Reason.INVALID_CLAIM, f"{bundle.jurisdiction} may not clear for {clearance.jurisdiction}"
        )
    bundle.level_rank(clearance.level)
    unknown = set(clearance.categories) - set(bundle.categories)
    if unknown:
        raise VerificationError(
            Reason.INVALID_CLAIM, f"categories unknown to {bundle.jurisdiction}: {sorted(unknown)}"
        )


def _status_list_fields(status_list: StatusList) -> dict[str, Any]:
    """``bits``, ``size``, ``non_zero`` (index as a string -> status) and counts per status."""
    from clearance.statuslist import Status

    names = {s.value: s.name.lower() for s in Status}
    non_zero: dict[str, int] = {}
    counts: dict[str, int] = {}
    total = 0
    for index, status in status_list.non_zero():
        total += 1
        if total <= MAX_NON_ZERO_LISTED:
            non_zero[str(index)] = status
        name = names.get(status, str(status))
        counts[name] = counts.get(name, 0) + 1
    fields: dict[str, Any] = {
        "bits": status_list.bits,
        "size": status_list.size,
        "counts": {"valid": status_list.size - total, **counts},
        "non_zero": non_zero,
    }
    if total > MAX_NON_ZERO_LISTED:
        fields["non_zero_truncated"] = True
    return fields


class StatusListTokenInspector(Inspector):
    kind = "status_list_token"
    anchor = "the signature needs --jwks (a JWK Set or the issuer's trust bundle)"

    def __init__(self, text: str) -> None:
        self.text = text
        self.token: StatusListToken | None = None

    def decode(self, report: Report) -> None:
        from clearance.statuslist import parse_status_list_token

        token = self.token = parse_status_list_token(self.text)
        report.fields.update(
            header=token.jws.header,
            payload=token.jws.payload,
            uri=token.uri,
            iat=token.issued_at,
            exp=token.expires_at,
            ttl=token.ttl,
            seq=token.seq,
            **_status_list_fields(token.status_list),
        )
        report.passed.append("the list decodes and inflates within the size cap")

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact

        assert self.token is not None
        token = self.token
        issuing = trust.require_issuing("a status list token")
        verify_compact(token.jws, issuing.key(token.kid, "the status list token"), what="status list token")
        report.passed.append(f"signature by {token.kid} from {issuing.source}")
        _check_x5c(token.jws.header, issuing, token.kid, trust.at, report)
        if issuing.bundle is not None:
            location = issuing.bundle.status_list_location(token.uri)
            if location is None:
                raise VerificationError(
                    Reason.UNTRUSTED_ISSUER, f"status list {token.uri[:80]!r} is not in {issuing.source}"
                )
            if location.bits != token.status_list.bits:
                raise VerificationError(
                    Reason.INVALID_CLAIM,
                    f"status list has {token.status_list.bits} bits, the bundle announces {location.bits}",
                )
        if token.expires_at is not None and token.expires_at <= trust.at:
            raise VerificationError(Reason.STATUS_LIST_EXPIRED, f"status list has expired at {trust.at}")
        return f"signed by issuing key {token.kid} from {issuing.source}; not expired at {trust.at}"


class BareStatusListInspector(Inspector):
    kind = "status_list"
    anchor = "a bare status list is not signed: nothing can vouch for it"

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def decode(self, report: Report) -> None:
        from clearance.statuslist import StatusList

        report.fields.update(_status_list_fields(StatusList.decode(self.obj)))
        report.passed.append("the list decodes and inflates within the size cap")

    def verify(self, trust: Trust, report: Report) -> str:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER,
            "a bare status list is not signed, so no key can vouch for it; inspect the status list token",
        )


class StatusDeltaInspector(Inspector):
    kind = "status_delta"
    anchor = "the signature needs --jwks (a JWK Set or the issuer's trust bundle)"

    def __init__(self, text: str) -> None:
        self.text = text
        self.delta: StatusDelta | None = None

    def decode(self, report: Report) -> None:
        from clearance.statusdelta import parse_status_delta

        delta = self.delta = parse_status_delta(self.text)
        report.fields.update(
            header=delta.jws.header,
            payload=delta.jws.payload,
            uri=delta.uri,
            iat=delta.issued_at,
            exp=delta.expires_at,
            base_seq=delta.base_seq,
            seq=delta.seq,
            updates={str(index): status for index, status in delta.updates},
        )

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact

        assert self.delta is not None
        delta = self.delta
        issuing = trust.require_issuing("a status delta")
        verify_compact(delta.jws, issuing.key(delta.kid, "the status delta"), what="status delta")
        report.passed.append(f"signature by {delta.kid} from {issuing.source}")
        if issuing.bundle is not None and issuing.bundle.status_list_location(delta.uri) is None:
            raise VerificationError(
                Reason.UNTRUSTED_ISSUER, f"status list {delta.uri[:80]!r} is not in {issuing.source}"
            )
        if delta.expires_at <= trust.at:
            raise VerificationError(Reason.STATUS_LIST_EXPIRED, f"status delta has expired at {trust.at}")
        return f"signed by issuing key {delta.kid} from {issuing.source}; not expired at {trust.at}"


class TrustBundleInspector(Inspector):
    kind = "trust_bundle"
    anchor = "the root signature needs --root"

    def __init__(self, text: str) -> None:
        self.text = text
        self.bundle: TrustBundle | None = None
        self.jws: CompactJWS | None = None

    def decode(self, report: Report) -> None:
        from clearance.agreement import Agreement
        from clearance.bundle import TrustBundle

        bundle, jws = TrustBundle.parse(self.text)
        self.bundle, self.jws = bundle, jws
        report.fields.update(
            header=jws.header,
            payload=jws.payload,
            issuer=bundle.issuer,
            jurisdiction=bundle.jurisdiction,
            version=bundle.version,
            iat=bundle.issued_at,
            exp=bundle.expires_at,
            root=bundle.root,
            issuing_keys=[
                {"kid": k.key.thumbprint, "alg": k.key.alg, "nbf": k.not_before, "exp": k.not_after}
                for k in bundle.issuing_keys
            ],
            levels=list(bundle.levels),
            categories=list(bundle.categories),
            status_lists=[s.to_json() for s in bundle.status_lists],
            agreements=[],
        )
        if _bundle_header_key(bundle, jws) is None:
            report.not_checked.append("the header carries no root key: only --root can check the signature")
        else:
            report.passed.append("signed by the root key in its header (trusted only with --root)")
        for raw in bundle.agreements:
            try:
                agreement = Agreement.parse(raw)
            except MalformedError as exc:
                raise VerificationError(
                    Reason.AGREEMENT_INVALID, f"bundle lists a bad agreement: {exc.detail}"
                ) from exc
            agreement.verify_signatures()
            report.fields["agreements"].append(_agreement_summary(agreement))
        if bundle.agreements:
            report.passed.append("every agreement listed is signed by both parties' roots")

    def verify(self, trust: Trust, report: Report) -> str:
        assert self.bundle is not None
        assert self.jws is not None
        root = trust.require_root("a trust bundle")
        _verify_bundle_under_root(self.text, self.jws, root)
        report.passed.append(f"signed by the trusted root {root.thumbprint}")
        if self.bundle.expires_at <= trust.at:
            raise VerificationError(
                Reason.BUNDLE_EXPIRED, f"trust bundle v{self.bundle.version} has expired at {trust.at}"
            )
        return f"signed by the trusted root {root.thumbprint}; not expired at {trust.at}"


def _agreement_summary(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "parties": [p.jurisdiction for p in agreement.parties],
        "nbf": agreement.not_before,
        "exp": agreement.expires_at,
    }


class AgreementInspector(Inspector):
    kind = "agreement"
    anchor = "signatures verify against the parties' own roots; give --root to require one of them"

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.agreement: Agreement | None = None

    def decode(self, report: Report) -> None:
        from clearance.agreement import Agreement

        agreement = self.agreement = Agreement.parse(self.obj)
        document = agreement.document
        signed_by: list[str] = []
        report.fields.update(
            headers=[s.header for s in document.signatures],
            payload=document.payload,
            id=agreement.id,
            iat=agreement.issued_at,
            nbf=agreement.not_before,
            exp=agreement.expires_at,
            in_force=agreement.not_before <= report.at < agreement.expires_at,
            parties=[
                {
                    "jurisdiction": p.jurisdiction,
                    "issuer": p.issuer,
                    "root": p.root.thumbprint,
                    "signed": agreement.is_signed_by(p.jurisdiction),
                }
                for p in agreement.parties
            ],
            signed_by=signed_by,
            levels=[
                dict(zip((p.jurisdiction for p in agreement.parties), row, strict=True))
                for row in agreement.levels
            ],
            categories={j: list(c) for j, c in agreement.categories.items()},
        )
        for party in agreement.parties:
            if agreement.is_signed_by(party.jurisdiction):
                document.signed_by(party.root, what="agreement")
                signed_by.append(party.jurisdiction)
                report.passed.append(f"signature by {party.jurisdiction}'s root verifies")
        if len(signed_by) < len(agreement.parties):
            report.fields["note"] = "a proposal: not in force until both parties' roots have signed"

    def verify(self, trust: Trust, report: Report) -> str:
        assert self.agreement is not None
        agreement = self.agreement
        root = trust.require_root("an agreement")
        if root.thumbprint not in {p.root.thumbprint for p in agreement.parties}:
            raise VerificationError(
                Reason.AGREEMENT_INVALID, f"agreement {agreement.id} does not name --root as a party"
            )
        agreement.verify(trust.at)
        party = next(p.jurisdiction for p in agreement.parties if p.root.thumbprint == root.thumbprint)
        return f"signed by both parties' roots, {party}'s being --root; in force at {trust.at}"


class RootRotationInspector(Inspector):
    kind = "root_rotation"
    anchor = "the previous root's signature needs --root (its JWK or PEM file)"

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.rotation: RootRotation | None = None

    def decode(self, report: Report) -> None:
        from clearance.bundle import RootRotation

        rotation = self.rotation = RootRotation.parse(self.obj)
        report.fields.update(
            headers=[s.header for s in rotation.document.signatures],
            payload=rotation.document.payload,
            jurisdiction=rotation.jurisdiction,
            version=rotation.version,
            iat=rotation.issued_at,
            previous=rotation.previous,
            new_root=rotation.new_root.thumbprint,
        )
        if rotation.new_root.thumbprint == rotation.previous:
            raise VerificationError(Reason.ROTATION_INVALID, "root rotation keeps the same key")
        try:
            rotation.document.signed_by(rotation.new_root, what="root rotation")
        except VerificationError as exc:
            raise VerificationError(Reason.ROTATION_INVALID, exc.detail) from exc
        report.passed.append("signed by the new root it names")

    def verify(self, trust: Trust, report: Report) -> str:
        assert self.rotation is not None
        root = trust.require_root("a root rotation")
        if root.key is None:
            raise VerificationError(
                Reason.UNKNOWN_KEY,
                "a root rotation is checked with the previous root's public key, not its thumbprint: "
                "give --root as a JWK or PEM file",
            )
        new_root = self.rotation.verify_from(root.key)
        return f"endorsed by the trusted root {root.thumbprint}; new root {new_root.thumbprint}"


class VisitAssuranceInspector(Inspector):
    """A visit assurance: the visitor's home registry vouches for one visit to a named host."""

    kind = "visit_assurance"
    anchor = "the issuer signature needs --jwks (a JWK Set or the issuing registry's trust bundle)"

    def __init__(self, text: str) -> None:
        self.text = text
        self.assurance: VisitAssurance | None = None
        self.jws: CompactJWS | None = None

    def decode(self, report: Report) -> None:
        from clearance.jws import decode_compact
        from clearance.visit import VISIT_TYP, parse_visit_assurance

        assurance = self.assurance = parse_visit_assurance(self.text)
        self.jws = decode_compact(self.text, what="visit assurance", max_bytes=8192, typ=VISIT_TYP)
        report.fields.update(
            header=self.jws.header,
            payload=self.jws.payload,
            issuer=assurance.issuer,
            subject=assurance.subject,
            assurance_id=assurance.assurance_id,
            iat=assurance.issued_at,
            holder_key=assurance.holder_thumbprint,
            clearance=assurance.clearance.to_json(),
            host={
                "jurisdiction": assurance.host_jurisdiction,
                "organization": assurance.host_organization,
            },
            programme=assurance.programme,
            visit_kind=assurance.kind.value,
            window={
                "nbf": assurance.not_before,
                "exp": assurance.expires_at,
                "state": _window_state(report.at, assurance.not_before, assurance.expires_at),
            },
        )
        report.passed.append("claims have the shape of a visit assurance")
        report.not_checked.append(
            "the visitor and the host: only the host node can check them, with the visitor's "
            "presentation (same pseudonym and holder key, and itself the named host)"
        )

    def verify(self, trust: Trust, report: Report) -> str:
        from clearance.jws import verify_compact

        assert self.assurance is not None
        assert self.jws is not None
        assurance = self.assurance
        issuing = trust.require_issuing("a visit assurance")
        verify_compact(self.jws, issuing.key(assurance.kid, "the visit assurance"), what="visit assurance")
        report.passed.append(f"issuer signature by {assurance.kid} from {issuing.source}")
        bundle = issuing.bundle
        if bundle is not None:
            if assurance.issuer != bundle.issuer:
                raise VerificationError(
                    Reason.UNTRUSTED_ISSUER,
                    f"visit assurance iss {assurance.issuer[:80]!r} is not {bundle.issuer!r}",
                )
            if not bundle.issuing_key(assurance.kid).covers(assurance.issued_at):
                raise VerificationError(
                    Reason.KEY_NOT_VALID_AT_ISSUANCE,
                    f"issuing key {assurance.kid} was not valid when the visit assurance was signed",
                )
            if assurance.clearance.jurisdiction != bundle.jurisdiction:
                raise VerificationError(
                    Reason.INVALID_CLAIM,
                    f"{bundle.jurisdiction} may not vouch for a {assurance.clearance.jurisdiction} clearance",
                )
            report.passed.append(f"issuer and key window fit {issuing.source}")
        if trust.at < assurance.not_before:
            raise VerificationError(Reason.NOT_YET_VALID, f"the visit has not started at {trust.at}")
        if trust.at >= assurance.expires_at:
            raise VerificationError(Reason.EXPIRED, f"the visit window has ended at {trust.at}")
        return f"signed by issuing key {assurance.kid} from {issuing.source}; inside its window at {trust.at}"


def _window_state(at: int, not_before: int, expires_at: int) -> str:
    if at < not_before:
        return "not yet started"
    if at >= expires_at:
        return "ended"
    return "current"


# -- recognizing the kind ---------------------------------------------------------


def read_artifact(stream: IO[bytes]) -> str:
    """The input as text, stripped of surrounding white space.

    Raises:
        MalformedError: too large, not UTF-8, or empty.
    """
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise MalformedError(f"input is larger than {MAX_INPUT_BYTES} bytes", Reason.TOO_LARGE)
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise MalformedError("input is not UTF-8 text") from exc
    if not text:
        raise MalformedError("input is empty")
    return text


def detect(text: str) -> Inspector:
    """The inspector for the artifact ``text`` holds.

    Raises:
        MalformedError: not a clearance artifact, or undecodable.
        VerificationError: a ``typ`` we do not know (``wrong_type``).
    """
    if text.startswith("{"):
        return _detect_json(parse_json_object(text, what="input", max_bytes=MAX_INPUT_BYTES))
    if "~" in text:
        return SdJwtInspector(text)
    if text.count(".") == 2:
        return _detect_compact(text)
    raise MalformedError(
        "input is not a clearance artifact: expected a compact JWS, an SD-JWT (with '~') or a JSON document"
    )


def _detect_compact(text: str) -> Inspector:
    from clearance.bundle import BUNDLE_TYP
    from clearance.credentials import SD_JWT_VC_TYP
    from clearance.sdjwt import KB_TYP
    from clearance.statusdelta import STATUS_DELTA_TYP
    from clearance.statuslist import STATUS_LIST_TYP
    from clearance.visit import VISIT_TYP

    encoded = text.split(".", 1)[0]
    if len(encoded) > 4096:
        raise MalformedError("token header is too large", Reason.TOO_LARGE)
    header = parse_json_object(
        b64url_decode(encoded, what="token header"), what="token header", max_bytes=4096
    )
    typ = header.get("typ")
    if typ == STATUS_LIST_TYP:
        return StatusListTokenInspector(text)
    if typ == STATUS_DELTA_TYP:
        return StatusDeltaInspector(text)
    if typ == BUNDLE_TYP:
        return TrustBundleInspector(text)
    if typ == VISIT_TYP:
        return VisitAssuranceInspector(text)
    if typ == SD_JWT_VC_TYP:
        raise MalformedError("an SD-JWT VC ends with '~' (RFC 9901 section 4); this one has none")
    if typ == KB_TYP:
        raise VerificationError(
            Reason.WRONG_TYPE, "a key-binding JWT alone proves nothing; inspect the whole presentation"
        )
    raise VerificationError(Reason.WRONG_TYPE, f"unknown token typ {str(typ)[:40]!r}")


def _detect_json(obj: dict[str, Any]) -> Inspector:
    from clearance.agreement import AGREEMENT_TYP
    from clearance.bundle import ROOT_TYP

    if "signatures" in obj or "payload" in obj:
        signatures = obj.get("signatures")
        first = signatures[0] if isinstance(signatures, list) and signatures else None
        protected = first.get("protected") if isinstance(first, dict) else None
        if not isinstance(protected, str):
            raise MalformedError("input is not a JWS JSON serialization with protected headers")
        header = parse_json_object(
            b64url_decode(protected, what="signature header"), what="signature header", max_bytes=4096
        )
        typ = header.get("typ")
        if typ == AGREEMENT_TYP:
            return AgreementInspector(obj)
        if typ == ROOT_TYP:
            return RootRotationInspector(obj)
        raise VerificationError(Reason.WRONG_TYPE, f"unknown JWS JSON document typ {str(typ)[:40]!r}")
    if "bits" in obj or "lst" in obj:
        return BareStatusListInspector(obj)
    raise MalformedError(
        'JSON input is not a clearance artifact: expected an agreement, a root rotation or a status list {"bits", "lst"}'
    )


def inspect_artifact(stream: IO[bytes], trust: Trust) -> Report:
    """Decode, self-check and (with trust material) verify the artifact in ``stream``.

    Never raises :class:`VerificationError`: a refusal is recorded in the report.
    """
    report = Report(trust.at)
    try:
        inspector = detect(read_artifact(stream))
        report.kind = inspector.kind
        report.unanchored = f"no --root or --jwks given: {inspector.anchor}"
        inspector.decode(report)
        if trust.given:
            if trust.problem is not None:
                raise trust.problem
            report.anchored = inspector.verify(trust, report)
    except VerificationError as exc:
        report.failure = exc
    return report


# -- the command --------------------------------------------------------------------


@click.command("inspect")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--root",
    metavar="ROOT",
    help="Trusted root key: a JWK or PEM public key file, or its RFC 7638 thumbprint.",
)
@click.option(
    "--jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted issuing keys: a JWK Set file, or a trust bundle (checked under --root if given).",
)
@click.option(
    "--at",
    type=click.IntRange(min=0),
    metavar="UNIX_TIME",
    help="Check validity at this time (seconds since the epoch; default: now).",
)
def inspect(file: IO[bytes], json_output: bool, root: str | None, jwks: Path | None, at: int | None) -> None:
    """Decode and verify any clearance artifact in FILE (- for stdin).

    Recognizes credentials, presentations, status list tokens and bare status
    lists, status deltas, trust bundles, agreements, root rotations and visit
    assurances. With --root or --jwks the artifact is also verified against
    that trust.

    Exit status: 0 decoded (and verified, when trust was given); 3 refused:
    verification failed, or the artifact can never be valid (forbidden
    algorithm, malformed, oversize, ...); 2 unusable --root or --jwks.
    """
    trust = load_trust(root, jwks, int(time.time()) if at is None else at)
    report = inspect_artifact(file, trust)
    output.emit(report.to_json(), json_output=json_output, human=lambda _: render(report))
    if report.failure is not None:
        raise report.failure
