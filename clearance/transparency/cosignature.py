"""C2SP ``tlog-cosignature``: timestamped Ed25519 witness cosignatures (``cosignature/v1``).

A cosignature is a note signature (type ``0x04``) over::

    cosignature/v1
    time <POSIX seconds>
    <the checkpoint's note text>

and is encoded as the 8-byte big-endian timestamp followed by the 64-byte
Ed25519 signature. It states that, at that time, this was the largest
consistent tree head the witness had seen for the log. The key ID is
``SHA-256(name || 0x0A || 0x04 || public key)[:4]``, so the same name and
key never collide with an ordinary Ed25519 note key.

:func:`verify_cosignatures` is what a relying party runs: the log's own
signature, then at least ``threshold`` distinct witnesses among those it
trusts, none dated in the future beyond an allowed skew.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.keys import PublicKey, SigningKey
from clearance.transparency.checkpoint import SignedCheckpoint, open_checkpoint
from clearance.transparency.note import (
    TYPE_COSIGNATURE_V1,
    Note,
    NoteSignature,
    NoteVerifier,
    VerifierKey,
    check_key_name,
    ed25519_public_bytes,
    ed25519_public_key,
    key_id,
    parse_note,
)

MAX_TIMESTAMP = 2**63 - 1
HEADER = "cosignature/v1\n"


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The bytes a ``cosignature/v1`` signs: header, time line, then the checkpoint's note text."""
    return f"{HEADER}time {timestamp}\n{text}".encode()


class CosignatureVerifier:
    """Verifies one witness's ``cosignature/v1`` signatures (implements ``NoteVerifier``)."""

    def __init__(self, name: str, key: PublicKey) -> None:
        check_key_name(name)
        self._raw = ed25519_public_bytes(key)
        self._key = key
        self._name = name
        self._key_id = key_id(name, TYPE_COSIGNATURE_V1, self._raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """From a verifier key string of type ``0x04``.

        Raises:
            MalformedError: not a valid cosignature/v1 verifier key.
        """
        parsed = VerifierKey.parse(vkey)
        if parsed.signature_type != TYPE_COSIGNATURE_V1:
            raise MalformedError("not a cosignature/v1 (type 0x04) verifier key")
        return cls(parsed.name, ed25519_public_key(parsed.public_key))

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def key(self) -> PublicKey:
        return self._key

    @property
    def vkey(self) -> str:
        return str(VerifierKey(self._name, self._key_id, TYPE_COSIGNATURE_V1, self._raw))

    def timestamp(self, text: bytes, signature: bytes) -> int:
        """Verify ``signature`` over the checkpoint ``text`` and return its timestamp.

        Raises:
            VerificationError: ``cosignature_invalid``.
        """
        if len(signature) != 8 + 64:
            raise VerificationError(Reason.COSIGNATURE_INVALID, f"{self._name}: a cosignature is 72 bytes")
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            raise VerificationError(Reason.COSIGNATURE_INVALID, f"{self._name}: timestamp out of range")
        try:
            self._key.verify(signature[8:], cosigned_message(text.decode(), timestamp))
        except VerificationError as exc:
            raise VerificationError(
                Reason.COSIGNATURE_INVALID, f"{self._name}: cosignature does not verify"
            ) from exc
        return timestamp

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise unless ``signature`` is this witness's cosignature over ``text``.

        Raises:
            VerificationError: ``cosignature_invalid``.
        """
        self.timestamp(text, signature)


class CosignatureSigner:
    """A witness's key: signs ``cosignature/v1`` over checkpoints."""

    def __init__(self, name: str, key: SigningKey) -> None:
        self.verifier = CosignatureVerifier(name, key.public)
        self._key = key

    @property
    def name(self) -> str:
        return self.verifier.name

    def cosign(self, text: str, timestamp: int) -> NoteSignature:
        """A cosignature over the checkpoint note ``text`` at POSIX time ``timestamp``.

        Raises:
            ValueError: the timestamp is out of range.
        """
        if not 0 <= timestamp <= MAX_TIMESTAMP:
            raise ValueError("cosignature timestamp out of range")
        signature = self._key.sign(cosigned_message(text, timestamp))
        return NoteSignature(self.name, self.verifier.key_id, timestamp.to_bytes(8, "big") + signature)


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint signed by its log and cosigned by enough trusted witnesses.

    Attributes:
        signed: the checkpoint and its note.
        cosigned_at: each witness (by name) whose cosignature verified, with its time.
    """

    signed: SignedCheckpoint
    cosigned_at: dict[str, datetime.datetime]


def verify_cosignatures(
    data: bytes,
    *,
    log: NoteVerifier,
    origin: str,
    witnesses: Sequence[CosignatureVerifier],
    threshold: int,
    now: datetime.datetime,
    max_skew: datetime.timedelta = datetime.timedelta(minutes=5),
) -> CosignedCheckpoint:
    """Open a checkpoint of ``origin`` signed by ``log`` and cosigned by ``threshold`` of ``witnesses``.

    Cosignatures by witnesses not listed are ignored; a listed witness's
    cosignature that fails, or is dated after ``now + max_skew``, refuses the
    whole checkpoint.

    Raises:
        MalformedError: the note cannot be parsed.
        VerificationError: the log's signature or the checkpoint is bad (see
            :func:`~clearance.transparency.checkpoint.open_checkpoint`),
            ``cosignature_invalid``, or ``cosignatures_insufficient``.
    """
    if threshold < 1:
        raise ValueError("the cosignature threshold is at least 1")
    note: Note = parse_note(data)
    signed = open_checkpoint(note, log, origin=origin)
    text = note.text.encode()
    known = {(w.name, w.key_id): w for w in witnesses}
    latest = int((now + max_skew).timestamp())
    cosigned_at: dict[str, datetime.datetime] = {}
    for signature in note.signatures:
        witness = known.get((signature.name, signature.key_id))
        if witness is None:
            continue
        timestamp = witness.timestamp(text, signature.signature)
        if timestamp > latest:
            raise VerificationError(
                Reason.COSIGNATURE_INVALID, f"{witness.name}: cosignature dated in the future"
            )
        cosigned_at[witness.name] = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    if len(cosigned_at) < threshold:
        raise VerificationError(
            Reason.COSIGNATURES_INSUFFICIENT,
            f"{len(cosigned_at)} trusted witness(es) cosigned, {threshold} needed",
        )
    return CosignedCheckpoint(signed, cosigned_at)
