"""Envelope encryption of personal data (AES-256-GCM).

Each person's data is encrypted under its own random data key; the data key
is encrypted ("wrapped") under a key-encryption key (KEK) that lives in a
file outside the database (``DIR/keys/kek-<id>.key``, mode 0600), or in an
HSM/KMS behind the same interface. Stealing the database yields ciphertext
only. The record id is bound as associated data, so ciphertext cannot be
moved to another record. Several KEKs may be loaded at once to rotate them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clearance.errors import StorageError
from clearance.keys import atomic_write

_NONCE = 12
_WRAPPED = _NONCE + 32 + 16  # nonce, data key, GCM tag


@dataclass(frozen=True)
class Sealed:
    """Ciphertext of one record, its wrapped data key, and the KEK that wraps it."""

    ciphertext: bytes
    wrapped_key: bytes
    kek_id: str

    def to_blob(self) -> bytes:
        """One column's worth: ``kek_id:`` + wrapped key (fixed size) + ciphertext."""
        return self.kek_id.encode() + b":" + self.wrapped_key + self.ciphertext

    @classmethod
    def from_blob(cls, blob: bytes) -> Sealed:
        kek_id, _, rest = blob.partition(b":")
        return cls(rest[_WRAPPED:], rest[:_WRAPPED], kek_id.decode())


class KeyEncryptionKeys:
    """The KEKs this process holds; the newest seals, any of them opens."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys or any(len(k) != 32 for k in keys.values()):
            raise StorageError("key-encryption keys must be 32 bytes and include the current one")
        self._keys = dict(keys)
        self.current = current

    @classmethod
    def generate_file(cls, directory: Path) -> str:
        """Create a new KEK file in ``directory``; returns its id."""
        kek_id = secrets.token_hex(4)
        atomic_write(Path(directory) / f"kek-{kek_id}.key", secrets.token_bytes(32), mode=0o600)
        return kek_id

    @classmethod
    def load(cls, directory: Path) -> KeyEncryptionKeys:
        """Load every ``kek-*.key`` in ``directory``; the most recently written seals.

        Raises:
            StorageError: none found, unreadable, readable by others, or the wrong size.
        """
        files = sorted(Path(directory).glob("kek-*.key"), key=lambda p: p.stat().st_mtime)
        if not files:
            raise StorageError(f"no key-encryption key in {directory}")
        keys: dict[str, bytes] = {}
        for path in files:
            if path.stat().st_mode & 0o077:
                raise StorageError(f"{path} is readable by others; run: chmod 600 {path}")
            keys[path.stem.removeprefix("kek-")] = path.read_bytes()
        return cls(keys, files[-1].stem.removeprefix("kek-"))

    def seal(self, record_id: str, plaintext: bytes) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, record_id.encode())
        wrap_nonce = os.urandom(_NONCE)
        wrapped = wrap_nonce + AESGCM(self._keys[self.current]).encrypt(
            wrap_nonce, data_key, b"dek:" + record_id.encode()
        )
        return Sealed(ciphertext, wrapped, self.current)

    def open(self, record_id: str, sealed: Sealed) -> bytes:
        """Decrypt a record.

        Raises:
            StorageError: the KEK is unknown or the ciphertext was altered or moved.
        """
        kek = self._keys.get(sealed.kek_id)
        if kek is None:
            raise StorageError(f"key-encryption key {sealed.kek_id} is not loaded")
        try:
            data_key = AESGCM(kek).decrypt(
                sealed.wrapped_key[:_NONCE], sealed.wrapped_key[_NONCE:], b"dek:" + record_id.encode()
            )
            return AESGCM(data_key).decrypt(
                sealed.ciphertext[:_NONCE], sealed.ciphertext[_NONCE:], record_id.encode()
            )
        except InvalidTag as exc:
            raise StorageError(f"encrypted record {record_id} does not decrypt: altered or moved") from exc
