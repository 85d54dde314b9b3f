"""C2SP ``tlog-checkpoint``: a log's signed tree head as a signed note.

The note text is the origin line, the tree size in decimal (no leading
zeros), the root hash in base64, and optional non-empty extension lines::

    registry.jp.clearance.example/log
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

A log signs it with its Ed25519 note key (:func:`sign_checkpoint`); a reader
opens it with the log's verifier and the origin it expects
(:func:`open_checkpoint`), so a checkpoint of another log, or one signed by
any other key, is refused.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.transparency.merkle import HASH_SIZE, MAX_TREE_SIZE
from clearance.transparency.note import (
    Ed25519NoteSigner,
    Note,
    NoteVerifier,
    VerifiedNote,
    check_text,
    parse_note,
    sign_note,
    strict_b64decode,
    verify_note,
)

MAX_EXTENSION_LINES = 16
MAX_ORIGIN_LENGTH = 256
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Checkpoint:
    """A log's origin, size and root hash (and opaque extension lines)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or len(self.origin) > MAX_ORIGIN_LENGTH or any(c.isspace() for c in self.origin):
            raise ValueError("a checkpoint origin is non-empty, at most 256 characters, without spaces")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError("a checkpoint size is 0 to 2**63 - 1")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError("a checkpoint root hash is 32 bytes")
        if len(self.extensions) > MAX_EXTENSION_LINES or any(
            not line or "\n" in line for line in self.extensions
        ):
            raise ValueError("checkpoint extension lines are non-empty single lines")

    def to_text(self) -> str:
        """The note text: origin, size, base64 root hash, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text strictly.

        Raises:
            VerificationError: ``checkpoint_invalid``: not three or more non-empty
                lines of origin, canonical size and a canonical base64 32-byte hash.
        """
        try:
            check_text(text)
            lines = text[:-1].split("\n")
            if len(lines) < 3 or len(lines) > 3 + MAX_EXTENSION_LINES:
                raise MalformedError(
                    "a checkpoint has an origin, a size, a root hash and few extension lines"
                )
            origin, size, root = lines[:3]
            if not _SIZE.fullmatch(size):
                raise MalformedError("the size line is a decimal number without leading zeros")
            root_hash = strict_b64decode(root, what="the root hash line")
            return cls(origin, int(size), root_hash, tuple(lines[3:]))
        except (MalformedError, ValueError) as exc:
            detail = exc.detail if isinstance(exc, MalformedError) else str(exc)
            raise VerificationError(Reason.CHECKPOINT_INVALID, detail) from exc


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature verified, with the note it came in (cosignatures and all)."""

    checkpoint: Checkpoint
    note: VerifiedNote

    @property
    def text(self) -> str:
        return self.note.text


def sign_checkpoint(checkpoint: Checkpoint, signer: Ed25519NoteSigner) -> bytes:
    """The checkpoint as a note signed by the log's key."""
    return sign_note(checkpoint.to_text(), [signer])


def open_checkpoint(data: bytes | Note, log: NoteVerifier, *, origin: str) -> SignedCheckpoint:
    """Parse and verify a checkpoint of the log ``origin`` signed by ``log``.

    Signatures by other keys (cosignatures, say) are ignored here; check them
    with :func:`clearance.transparency.cosignature.verify_cosignatures`.

    Raises:
        MalformedError: the note cannot be parsed.
        VerificationError: ``unknown_key`` (the log did not sign it),
            ``bad_signature``, or ``checkpoint_invalid`` (malformed body, another origin).
    """
    note = data if isinstance(data, Note) else parse_note(data)
    verified = verify_note(note, [log])
    checkpoint = Checkpoint.parse(verified.text)
    if checkpoint.origin != origin:
        raise VerificationError(
            Reason.CHECKPOINT_INVALID, f"checkpoint of {checkpoint.origin!r}, expected {origin!r}"
        )
    return SignedCheckpoint(checkpoint, verified)
