"""C2SP ``signed-note``: text signed by one or more keys, and verifier keys.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> <base64(4-byte key ID || signature)>``. A key is named by its
name and key ID; the key ID is ``SHA-256(name || 0x0A || type || public
key)[:4]`` with the signature type byte (``0x01`` Ed25519, ``0x04``
``cosignature/v1``, see :mod:`~clearance.transparency.cosignature`). A
verifier key is written ``<name>+<8 hex digits of the key ID>+<base64(type
|| public key)>``.

Parsing is strict and bounded: at most :data:`MAX_NOTE_SIZE` bytes and
:data:`MAX_SIGNATURES` signature lines (the spec asks for at least 16), valid
UTF-8, no control characters but newline, canonical padded base64, key names
without spaces or ``+``. Verification follows the spec: signatures from
unknown keys are ignored; a signature from a known key that fails rejects the
whole note; a note that no known key signed is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519

from clearance.encoding import b64url_decode
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.keys import PublicKey, SigningKey

MAX_NOTE_SIZE = 64 * 1024
MAX_SIGNATURES = 64
SIGNATURE_PREFIX = "\u2014 "
TYPE_ED25519 = 0x01
TYPE_COSIGNATURE_V1 = 0x04
MAX_NAME_LENGTH = 256

_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile("[0-9a-f]{8}")


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def check_key_name(name: str) -> None:
    """Refuse a key name the spec forbids: empty, with a Unicode space or ``+``, or a control character.

    Raises:
        MalformedError: the name is not allowed.
    """
    if (
        not name
        or len(name) > MAX_NAME_LENGTH
        or "+" in name
        or any(c.isspace() for c in name)
        or _CONTROL.search(name)
    ):
        raise MalformedError("a key name must be non-empty, without spaces, '+' or control characters")


def strict_b64decode(text: str, *, what: str) -> bytes:
    """Standard padded base64, in its one canonical spelling only.

    Raises:
        MalformedError: not canonical base64.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise MalformedError(f"{what} is not base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise MalformedError(f"{what} is not canonical base64")
    return raw


def ed25519_public_bytes(key: PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key.

    Raises:
        MalformedError: the key is not Ed25519.
    """
    if key.alg != "EdDSA":
        raise MalformedError("signed notes here use Ed25519 keys")
    return b64url_decode(key.bare_jwk["x"], what="Ed25519 key")


def ed25519_public_key(raw: bytes) -> PublicKey:
    """An Ed25519 :class:`~clearance.keys.PublicKey` from its 32 raw bytes.

    Raises:
        MalformedError: not 32 bytes, or not a valid point.
    """
    if len(raw) != 32:
        raise MalformedError("an Ed25519 public key is 32 bytes")
    try:
        return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(raw))
    except ValueError as exc:
        raise MalformedError("not an Ed25519 public key") from exc


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name and ID and the signature bytes (without the ID)."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """``— <name> <base64(key ID || signature)>`` and a newline."""
        encoded = base64.b64encode(self.key_id.to_bytes(4, "big") + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    """A parsed, not yet verified, signed note."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


class NoteVerifier(Protocol):
    """A known key: its name, key ID, and a check of its signatures over a note's text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise unless ``signature`` is this key's over ``text``.

        Raises:
            VerificationError: the signature does not verify.
        """
        ...


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key string: name, key ID, signature type and public key bytes."""

    name: str
    key_id: int
    signature_type: int
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse ``<name>+<hex key ID>+<base64(type || key)>``, checking that the key ID matches.

        Raises:
            MalformedError: not a verifier key, or its key ID is not the one its key has.
        """
        if len(vkey) > MAX_NAME_LENGTH + 1024:
            raise MalformedError("verifier key is too long")
        name, sep, rest = vkey.partition("+")
        hex_id, sep2, encoded = rest.partition("+")
        if not sep or not sep2 or not _HEX_KEY_ID.fullmatch(hex_id):
            raise MalformedError("a verifier key is <name>+<8 lowercase hex digits>+<base64 key>")
        check_key_name(name)
        raw = strict_b64decode(encoded, what="verifier key")
        if len(raw) < 2:
            raise MalformedError("verifier key has no key material")
        if key_id(name, raw[0], raw[1:]) != int(hex_id, 16):
            raise MalformedError("verifier key's ID does not match its name and key")
        return cls(name, int(hex_id, 16), raw[0], raw[1:])

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"


class Ed25519NoteVerifier:
    """Verifies ``0x01`` Ed25519 note signatures by one named key."""

    def __init__(self, name: str, key: PublicKey) -> None:
        check_key_name(name)
        self._raw = ed25519_public_bytes(key)
        self._key = key
        self._name = name
        self._key_id = key_id(name, TYPE_ED25519, self._raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519NoteVerifier:
        """From a verifier key string of type ``0x01``.

        Raises:
            MalformedError: not a valid Ed25519 verifier key.
        """
        parsed = VerifierKey.parse(vkey)
        if parsed.signature_type != TYPE_ED25519:
            raise MalformedError("not an Ed25519 (type 0x01) verifier key")
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
        return str(VerifierKey(self._name, self._key_id, TYPE_ED25519, self._raw))

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise unless ``signature`` is this key's Ed25519 signature over ``text``.

        Raises:
            VerificationError: ``bad_signature``.
        """
        if len(signature) != 64:
            raise VerificationError(Reason.BAD_SIGNATURE, f"{self._name}: an Ed25519 signature is 64 bytes")
        self._key.verify(signature, text)


class Ed25519NoteSigner:
    """Signs notes with an Ed25519 :class:`~clearance.keys.SigningKey` under a key name."""

    def __init__(self, name: str, key: SigningKey) -> None:
        self.verifier = Ed25519NoteVerifier(name, key.public)
        self._key = key

    @property
    def name(self) -> str:
        return self.verifier.name

    def sign(self, text: str) -> NoteSignature:
        """This key's signature over ``text`` (the note text, ending in a newline)."""
        return NoteSignature(self.name, self.verifier.key_id, self._key.sign(text.encode()))


def check_text(text: str) -> None:
    """Refuse note text that is empty, lacks its final newline or holds control characters.

    Raises:
        MalformedError: the text is not note text.
    """
    if not text.endswith("\n") or _CONTROL.search(text):
        raise MalformedError("note text must end in a newline and hold no control characters")


def sign_note(text: str, signers: Sequence[Ed25519NoteSigner]) -> bytes:
    """A signed note of ``text`` with a signature by each of ``signers``.

    Raises:
        MalformedError: the text is not valid note text.
    """
    check_text(text)
    return Note(text, tuple(signer.sign(text) for signer in signers)).to_bytes()


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines, strictly; nothing is verified.

    Raises:
        MalformedError: too large, not UTF-8, control characters, no signature
            block, a malformed signature line, or too many signatures.
    """
    if len(data) > MAX_NOTE_SIZE:
        raise MalformedError(f"a note is at most {MAX_NOTE_SIZE} bytes", Reason.TOO_LARGE)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError("a note must be UTF-8") from exc
    if _CONTROL.search(decoded):
        raise MalformedError("a note holds no control characters but newline")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedError("a note needs a blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedError("a note's signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedError(f"a note carries at most {MAX_SIGNATURES} signatures", Reason.TOO_LARGE)
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedError("a signature line starts with an em dash and a space")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not space:
            raise MalformedError("a signature line is '— <name> <signature>'")
        check_key_name(name)
        raw = strict_b64decode(encoded, what="a note signature")
        if len(raw) < 5:
            raise MalformedError("a note signature is a 4-byte key ID and at least one byte")
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(signatures))


@dataclass(frozen=True)
class VerifiedNote:
    """A note with at least one signature by a known key that verified.

    Attributes:
        note: the whole note as parsed.
        verified: the signatures by known keys, all verified.
        unknown: the signatures by keys the caller did not name (ignored, unverified).
    """

    note: Note

    verified: tuple[NoteSignature, ...]
    unknown: tuple[NoteSignature, ...]

    @property
    def text(self) -> str:
        return self.note.text


def verify_note(note: Note, verifiers: Sequence[NoteVerifier]) -> VerifiedNote:
    """Check ``note``'s signatures against the known ``verifiers``.

    Raises:
        VerificationError: a known key's signature fails (the verifier's reason,
            ``bad_signature`` for Ed25519), or no known key signed (``unknown_key``).
    """
    known = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode()
    verified: list[NoteSignature] = []
    unknown: list[NoteSignature] = []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            unknown.append(signature)
            continue
        verifier.verify(text, signature.signature)
        verified.append(signature)
    if not verified:
        raise VerificationError(Reason.UNKNOWN_KEY, "no known key signed the note")
    return VerifiedNote(note, tuple(verified), tuple(unknown))


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> VerifiedNote:
    """Parse and verify a signed note from outside.

    Raises:
        MalformedError: see :func:`parse_note`.
        VerificationError: see :func:`verify_note`.
    """
    return verify_note(parse_note(data), verifiers)
