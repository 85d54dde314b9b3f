"""The one exception tree of clearance.

Everything the project raises on purpose derives from :class:`ClearanceError`,
so a caller (the CLI, a servicer) catches exactly one type and prints its
message::

    ClearanceError
    ├── VerificationError      bad data from outside: a token, list, bundle or
    │   │                      presentation that must not be trusted. Carries a
    │   │                      machine-readable ``reason`` (see :class:`Reason`).
    │   └── MalformedError     the input cannot even be parsed (encoding, JSON,
    │                          size, nesting); always refused, trust root or not.
    ├── PolicyError            well-formed and authentic, but a decision rule says
    │                          no or cannot decide (staleness, level, category).
    ├── TransportError         talking to a peer failed (registry unreachable,
    │                          stream broken); nothing was learned.
    ├── StorageError           the local store or database failed or is corrupt.
    │   └── WriteConflictError   a write collided with a concurrent one (a unique
    │                            key taken, a deadlock, a busy database): nothing
    │                            was written, and running it again may succeed.
    ├── KeyAccessError         a signing key could not be used (a PKCS#11 token:
    │                          wrong PIN, no such token or key, token gone);
    │                          carries a ``code`` (see :class:`KeyAccessCode`).
    ├── AuthorizationError     who is calling is unknown or may not do this.
    │   ├── AuthenticationError  missing or invalid caller credential.
    │   └── PermissionDeniedError  a valid caller without the right; a refusal by
    │                              a separation-of-duties rule carries a ``code``
    │                              (see :class:`DenialCode`).
    ├── ProtocolError          an OAuth / OpenID4VC request refused with the spec's
    │                          error code (``code``, see :class:`OAuthErrorCode`).
    ├── InvalidArgumentError   a request names a bad value (``field`` says which).
    ├── NotFoundError          a request names something that does not exist.
    ├── ConflictError          a request collides with existing state.
    └── WorkflowError          a step out of order (issue before consent, ...).

Foreign exceptions (PyJWT, cryptography, zlib, json, SQLAlchemy, grpc) are
mapped into this tree once, at the boundary where they occur, with
``raise ... from exc``.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why a verification refused. Stable strings: they appear in logs and APIs."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    DUPLICATE_MEMBER = "duplicate_member"
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_KEY = "unknown_key"
    KEY_NOT_VALID_AT_ISSUANCE = "key_not_valid_at_issuance"
    BAD_SIGNATURE = "bad_signature"
    MISSING_CLAIM = "missing_claim"
    INVALID_CLAIM = "invalid_claim"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    DISCLOSURE_MISMATCH = "disclosure_mismatch"
    DUPLICATE_DISCLOSURE = "duplicate_disclosure"
    KEY_BINDING_MISSING = "key_binding_missing"
    KEY_BINDING_INVALID = "key_binding_invalid"
    SD_HASH_MISMATCH = "sd_hash_mismatch"
    AUDIENCE_MISMATCH = "audience_mismatch"
    NONCE_UNKNOWN = "nonce_unknown"
    NONCE_REPLAYED = "nonce_replayed"
    NONCE_EXPIRED = "nonce_expired"
    STATUS_LIST_MISSING = "status_list_missing"
    STATUS_LIST_STALE = "status_list_stale"
    STATUS_LIST_EXPIRED = "status_list_expired"
    STATUS_INDEX_OUT_OF_RANGE = "status_index_out_of_range"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    STATUS_UNKNOWN = "status_unknown"
    ROLLBACK = "rollback"
    BUNDLE_EXPIRED = "bundle_expired"
    NO_TRUSTED_BUNDLE = "no_trusted_bundle"
    ROOT_MISMATCH = "root_mismatch"
    ROTATION_INVALID = "rotation_invalid"
    AGREEMENT_INVALID = "agreement_invalid"
    AGREEMENT_TERMINATED = "agreement_terminated"
    UNTRUSTED_ISSUER = "untrusted_issuer"
    THRESHOLD_NOT_MET = "threshold_not_met"
    VERSION_NOT_NEXT = "version_not_next"
    PAYLOAD_MISMATCH = "payload_mismatch"
    DUPLICATE_SIGNATURE = "duplicate_signature"
    CHAIN_UNTRUSTED = "chain_untrusted"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_KEY_MISMATCH = "certificate_key_mismatch"
    CERTIFICATE_USAGE = "certificate_usage"
    # Transparency log (c2sp.org tlog-* specifications, RFC 9162 proofs).
    INCLUSION_PROOF_INVALID = "inclusion_proof_invalid"
    CONSISTENCY_PROOF_INVALID = "consistency_proof_invalid"
    CHECKPOINT_INVALID = "checkpoint_invalid"
    COSIGNATURE_INVALID = "cosignature_invalid"
    COSIGNATURES_INSUFFICIENT = "cosignatures_insufficient"
    LOG_SHRANK = "log_shrank"
    LOG_UNKNOWN = "log_unknown"
    SPLIT_VIEW = "split_view"
    OLD_SIZE_MISMATCH = "old_size_mismatch"
    TILE_INVALID = "tile_invalid"
    ENTRY_INVALID = "entry_invalid"


class ClearanceError(Exception):
    """Root of every error clearance raises on purpose."""


class VerificationError(ClearanceError):
    """An artifact from outside failed verification and must not be trusted.

    Attributes:
        reason: a stable machine-readable code.
        detail: a sentence for humans; never contains secrets.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class MalformedError(VerificationError):
    """The input cannot be parsed: bad encoding, bad JSON, too large, too deep."""

    def __init__(self, detail: str, reason: Reason = Reason.MALFORMED) -> None:
        super().__init__(reason, detail)


class PolicyError(ClearanceError):
    """Authentic input, but a rule refuses it or cannot decide (fail closed)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TransportError(ClearanceError):
    """A peer could not be reached or broke off; nothing was learned."""


class RateLimitedError(ClearanceError):
    """Too many requests from one caller: nothing was done; try again later."""


class StorageError(ClearanceError):
    """The store failed or holds something it should not."""


class KeyAccessCode(enum.StrEnum):
    """Why a signing key could not be used. Stable strings, like :class:`Reason`."""

    MALFORMED_URI = "malformed_uri"
    MODULE_UNAVAILABLE = "module_unavailable"
    PIN_UNAVAILABLE = "pin_unavailable"
    WRONG_PIN = "wrong_pin"
    NO_SUCH_TOKEN = "no_such_token"  # noqa: S105  (a code, not a secret)
    TOKEN_MISMATCH = "token_mismatch"  # noqa: S105  (a code, not a secret)
    NO_SUCH_KEY = "no_such_key"
    UNSUPPORTED_MECHANISM = "unsupported_mechanism"
    TOKEN_UNAVAILABLE = "token_unavailable"  # noqa: S105  (a code, not a secret)


class KeyAccessError(ClearanceError):
    """A signing key could not be used; nothing was signed.

    Attributes:
        code: a stable machine-readable code.
        detail: a sentence for humans; never contains a PIN.
    """

    def __init__(self, code: KeyAccessCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail


class WriteConflictError(StorageError):
    """A write collided with a concurrent one and was rolled back whole.

    A unique key another transaction took first, a deadlock or serialization
    failure the database broke, a database too busy to take the write lock:
    nothing of the transaction was written, and running it again may succeed.
    """


class AuthorizationError(ClearanceError):
    """The caller is unknown, or known and not allowed."""


class AuthenticationError(AuthorizationError):
    """Missing, expired or invalid caller credential."""


class DenialCode(enum.StrEnum):
    """Why a valid caller was refused by a separation-of-duties rule. Stable strings, like :class:`Reason`.

    The role table refuses whole methods; these rules refuse one caller for one
    object, because of what that caller already did to it.
    """

    INVESTIGATOR_CANNOT_DECIDE = "investigator_cannot_decide"
    """Deciding or approving an assessment whose consent or findings the caller recorded."""
    SECOND_ADJUDICATOR_REQUIRED = "second_adjudicator_required"
    """Approving one's own Top Secret decision: the second adjudicator must be another account."""
    OWN_DECISION_APPEAL = "own_decision_appeal"
    """Resolving the appeal of a decision the caller took part in (investigated, decided, approved)."""


class PermissionDeniedError(AuthorizationError):
    """A valid caller without the right to do this.

    Attributes:
        code: the separation-of-duties rule that refused, or None for a refusal by role or scope.
        detail: the sentence for humans (the message without the code).
    """

    def __init__(self, detail: str, code: DenialCode | None = None) -> None:
        super().__init__(f"{code.value}: {detail}" if code is not None else detail)
        self.code = code
        self.detail = detail


class OAuthErrorCode(enum.StrEnum):
    """Error codes of OAuth 2.0 (RFC 6749, RFC 6750), OpenID4VCI 1.0 and OpenID4VP 1.0."""

    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    INVALID_TOKEN = "invalid_token"  # noqa: S105  (a code, not a secret)
    INVALID_CREDENTIAL_REQUEST = "invalid_credential_request"
    UNKNOWN_CREDENTIAL_CONFIGURATION = "unknown_credential_configuration"
    INVALID_PROOF = "invalid_proof"
    INVALID_NONCE = "invalid_nonce"
    CREDENTIAL_REQUEST_DENIED = "credential_request_denied"
    INVALID_REQUEST_OBJECT = "invalid_request_object"
    INVALID_REQUEST_URI = "invalid_request_uri"
    ACCESS_DENIED = "access_denied"
    SERVER_ERROR = "server_error"


_STATUS_OF_CODE = {
    OAuthErrorCode.INVALID_CLIENT: 401,
    OAuthErrorCode.INVALID_TOKEN: 401,
    OAuthErrorCode.ACCESS_DENIED: 403,
    OAuthErrorCode.SERVER_ERROR: 500,
}


class ProtocolError(ClearanceError):
    """A protocol request refused with the error code its specification defines.

    Attributes:
        code: the spec's ``error`` value.
        description: the ``error_description``; a sentence for humans, never a secret.
        reason: the verification reason behind it, where one decided (a stable code).
        status: the HTTP status the endpoint answers with.
    """

    def __init__(
        self,
        code: OAuthErrorCode,
        description: str,
        *,
        reason: Reason | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code.value}: {description}")
        self.code = code
        self.description = description
        self.reason = reason
        self.status = status if status is not None else _STATUS_OF_CODE.get(code, 400)

    def to_json(self) -> dict[str, str]:
        """The error response body (RFC 6749 section 5.2)."""
        body = {"error": self.code.value, "error_description": self.description}
        if self.reason is not None:
            body["clearance_reason"] = self.reason.value
        return body


class InvalidArgumentError(ClearanceError):
    """A request carries a bad value.

    Attributes:
        field: the name of the offending field, as the caller spelled it (empty when
            a peer refused a request without naming one).
    """

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}" if field else detail)
        self.field = field
        self.detail = detail


class NotFoundError(ClearanceError):
    """A request names something that does not exist."""


class ConflictError(ClearanceError):
    """A request collides with existing state (a duplicate name, say)."""


class WorkflowError(ClearanceError):
    """A step attempted out of order: issuing without consent, reinstating a revoked credential."""
