"""The registry's key material, loaded from ``DIR/keys``.

* ``root.pem``: the root key. It signs trust bundles and root rotations. An
  operator may move it offline; the registry then serves the bundles it has
  and ``clearance registry sign-bundle`` is run where the root lives.
* ``issuing-<kid>.pem``: issuing keys; the newest active one signs
  credentials, status lists and deltas.
* ``kek-<id>.key``: key-encryption keys for personal data.
* ``pseudonym.key``: the secret behind subject pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from clearance.encoding import b64url_encode
from clearance.errors import StorageError
from clearance.keys import SigningKey, atomic_write, read_private_key, write_private_key
from registry.store.envelope import KeyEncryptionKeys


@dataclass
class KeyRing:
    root: SigningKey | None
    issuing: dict[str, SigningKey]
    current_issuing: str
    kek: KeyEncryptionKeys
    pseudonym_secret: bytes

    @property
    def issuing_key(self) -> SigningKey:
        return self.issuing[self.current_issuing]

    def pseudonym(self, person_id: str) -> str:
        """A stable subject identifier for ``person_id`` that reveals nothing about them."""
        mac = hmac.new(self.pseudonym_secret, b"subject:" + person_id.encode(), hashlib.sha256)
        return "sub_" + b64url_encode(mac.digest()[:18])

    @classmethod
    def create(cls, directory: Path) -> KeyRing:
        """Make a new root, issuing key, KEK and pseudonym secret in ``directory``."""
        directory = Path(directory)
        root, issuing = SigningKey.generate(), SigningKey.generate()
        write_private_key(directory / "root.pem", root)
        write_private_key(directory / f"issuing-{issuing.kid}.pem", issuing)
        KeyEncryptionKeys.generate_file(directory)
        atomic_write(directory / "pseudonym.key", secrets.token_bytes(32), mode=0o600)
        return cls.load(directory, current_issuing=issuing.kid)

    @classmethod
    def load(cls, directory: Path, current_issuing: str | None = None) -> KeyRing:
        """Load the key ring; ``current_issuing`` picks the signing key (default: newest file).

        Raises:
            StorageError: a key is missing, unreadable or too widely readable.
        """
        directory = Path(directory)
        root_path = directory / "root.pem"
        root = read_private_key(root_path) if root_path.exists() else None
        issuing_files = sorted(directory.glob("issuing-*.pem"), key=lambda p: p.stat().st_mtime)
        if not issuing_files:
            raise StorageError(f"no issuing key in {directory}")
        issuing = {key.kid: key for key in (read_private_key(p) for p in issuing_files)}
        current = current_issuing or read_private_key(issuing_files[-1]).kid
        if current not in issuing:
            raise StorageError(f"issuing key {current} is not in {directory}")
        secret_path = directory / "pseudonym.key"
        try:
            if secret_path.stat().st_mode & 0o077:
                raise StorageError(f"{secret_path} is readable by others; run: chmod 600 {secret_path}")
            secret = secret_path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {secret_path}: {exc.strerror}") from exc
        return cls(root, issuing, current, KeyEncryptionKeys.load(directory), secret)

    def add_issuing_key(self, directory: Path) -> SigningKey:
        """Generate and store a new issuing key (rotation); it becomes current."""
        key = SigningKey.generate()
        write_private_key(Path(directory) / f"issuing-{key.kid}.pem", key)
        self.issuing[key.kid] = key
        self.current_issuing = key.kid
        return key
