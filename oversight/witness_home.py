"""A witness's directory: its cosigning key, name, state database and TLS material.

::

    witness.json        {"name": "<the witness's key name>"}
    witness-key.pem     Ed25519 private key (mode 0600)
    witness.db          SQLite: one row per log (oversight.witness_store)
    tls/                ca.pem, server.pem, server-key.pem (clearance.tls)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clearance.errors import ConflictError, MalformedError, StorageError
from clearance.keys import SigningKey, atomic_write, read_private_key, write_private_key
from clearance.tls import TlsFiles, create_tls
from clearance.transparency.cosignature import CosignatureSigner
from clearance.transparency.note import check_key_name
from oversight.witness_store import WitnessStore


@dataclass(frozen=True)
class WitnessHome:
    """The files of one witness."""

    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / "witness.json"

    @property
    def key_path(self) -> Path:
        return self.directory / "witness-key.pem"

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles.in_dir(self.directory / "tls")

    @classmethod
    def init(cls, directory: Path, name: str, hosts: list[str]) -> WitnessHome:
        """Create a witness: a new key, its name, an empty state database and TLS material for ``hosts``.

        Raises:
            MalformedError: the name is not a valid note key name.
            ConflictError: the directory already holds a witness.
            StorageError: the files could not be written.
        """
        check_key_name(name)
        home = cls(Path(directory))
        if home.config_path.exists() or home.key_path.exists():
            raise ConflictError(f"{directory} already holds a witness")
        home.directory.mkdir(parents=True, exist_ok=True)
        write_private_key(home.key_path, SigningKey.generate())
        WitnessStore(home.directory / "witness.db")
        create_tls(home.directory / "tls", common_name=name, hosts=hosts)
        atomic_write(home.config_path, json.dumps({"name": name}).encode() + b"\n")
        return home

    @classmethod
    def open(cls, directory: Path) -> WitnessHome:
        """An existing witness directory.

        Raises:
            StorageError: it holds no witness.
        """
        home = cls(Path(directory))
        if not home.config_path.exists():
            raise StorageError(f"{directory} holds no witness; run: clearance witness init --dir {directory}")
        return home

    @property
    def name(self) -> str:
        """The witness's key name.

        Raises:
            StorageError: the config is unreadable or malformed.
        """
        try:
            name = json.loads(self.config_path.read_text())["name"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"cannot read {self.config_path}") from exc
        if not isinstance(name, str):
            raise StorageError(f"{self.config_path}: name is not a string")
        try:
            check_key_name(name)
        except MalformedError as exc:
            raise StorageError(f"{self.config_path}: {exc.detail}") from exc
        return name

    def signer(self) -> CosignatureSigner:
        """The witness's cosigning key under its name.

        Raises:
            StorageError: the key file is missing, unreadable or readable by others.
        """
        return CosignatureSigner(self.name, read_private_key(self.key_path))

    def store(self) -> WitnessStore:
        """The state database."""
        return WitnessStore(self.directory / "witness.db")
