"""A registry log for witness tests: a real tiled log that signs checkpoints and proves consistency."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

from clearance.keys import SigningKey
from clearance.transparency.checkpoint import Checkpoint, sign_checkpoint
from clearance.transparency.merkle import consistency_proof
from clearance.transparency.note import Ed25519NoteSigner
from tests.clearance.transparency.tlog_world import MemoryLog


@dataclass
class WitnessedLog:
    """A log with its signing key; :meth:`request` builds ``add-checkpoint`` bodies."""

    origin: str
    signer: Ed25519NoteSigner
    log: MemoryLog = field(default_factory=MemoryLog)

    @classmethod
    def create(cls, origin: str = "registry.jp.clearance.example/log") -> WitnessedLog:
        return cls(origin, Ed25519NoteSigner(origin, SigningKey.generate()))

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey

    def grow(self, count: int, tag: bytes = b"") -> None:
        start = self.log.size
        self.log.append([tag + i.to_bytes(8, "big") for i in range(start, start + count)])

    def checkpoint(self, size: int | None = None, signer: Ed25519NoteSigner | None = None) -> bytes:
        size = self.log.size if size is None else size
        return sign_checkpoint(Checkpoint(self.origin, size, self.log.roots[size]), signer or self.signer)

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = self.log.size if new is None else new
        return consistency_proof(old, new, self.log.hash_reader(new))

    def request(
        self,
        old: int,
        *,
        new: int | None = None,
        proof: Sequence[bytes] | None = None,
        note: bytes | None = None,
    ) -> bytes:
        """``old N``, the proof lines (the right proof unless given), a blank line, the checkpoint."""
        new = self.log.size if new is None else new
        lines = self.proof(old, new) if proof is None else proof
        head = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in lines) + "\n"
        return head.encode() + (note if note is not None else self.checkpoint(new))
