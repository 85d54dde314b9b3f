"""A transparency-log witness (C2SP ``tlog-witness``): cosigns only consistent checkpoints of known logs.

:meth:`Witness.add_checkpoint` takes the body of ``POST /add-checkpoint``::

    old <size the client believes the witness has>
    <consistency proof line, base64>   (0 to 63 of them)
    <blank line>
    <checkpoint, a signed note>

and returns the cosignature lines. It refuses, changing nothing, with the
reason and the HTTP status the spec gives:

=====================================================  ======  ==============================
refusal                                                status  reason
=====================================================  ======  ==============================
malformed body, note or checkpoint                     400     ``malformed``/``checkpoint_invalid``
``old`` larger than the checkpoint's size              400     ``log_shrank``
origin not configured                                  404     ``log_unknown``
no valid signature by the log's configured key         403     ``unknown_key``/``bad_signature``
``old`` is not the size the witness cosigned last      409     ``old_size_mismatch`` (+ that size)
same size as last cosigned, another root (split view)  409     ``split_view`` (+ that size)
consistency proof does not verify                      422     ``consistency_proof_invalid``
=====================================================  ======  ==============================

The new state is committed (compare-and-swap on the old size and root)
before the cosignature is made, so what the witness has cosigned is never
lost and never rolled back.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.transparency.checkpoint import Checkpoint
from clearance.transparency.cosignature import CosignatureSigner
from clearance.transparency.merkle import HASH_SIZE, verify_consistency
from clearance.transparency.note import (
    MAX_NOTE_SIZE,
    Ed25519NoteVerifier,
    parse_note,
    strict_b64decode,
    verify_note,
)
from oversight.witness_store import WitnessStore

MAX_PROOF_LINES = 63
MAX_REQUEST_SIZE = MAX_NOTE_SIZE + 64 * (MAX_PROOF_LINES + 1)
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,18})")

Clock = Callable[[], datetime.datetime]

STATUS_BY_REASON: dict[Reason, int] = {
    Reason.MALFORMED: 400,
    Reason.TOO_LARGE: 400,
    Reason.CHECKPOINT_INVALID: 400,
    Reason.LOG_SHRANK: 400,
    Reason.LOG_UNKNOWN: 404,
    Reason.UNKNOWN_KEY: 403,
    Reason.BAD_SIGNATURE: 403,
    Reason.OLD_SIZE_MISMATCH: 409,
    Reason.SPLIT_VIEW: 409,
    Reason.CONSISTENCY_PROOF_INVALID: 422,
}
"""The HTTP status of each refusal (c2sp.org/tlog-witness); anything else is a 500."""


class CheckpointConflictError(VerificationError):
    """A 409: the client's idea of the witness's state is wrong, or the log forked (split view).

    Attributes:
        latest_size: the size of the latest checkpoint the witness cosigned for the log.
    """

    def __init__(self, reason: Reason, detail: str, latest_size: int) -> None:
        super().__init__(reason, detail)
        self.latest_size = latest_size


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed ``add-checkpoint`` body (the checkpoint note is parsed, not verified)."""

    old_size: int
    proof: tuple[bytes, ...]
    note: bytes

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpointRequest:
        """Parse the body strictly.

        Raises:
            MalformedError: too large, no ``old`` line, a bad proof line, more
                than 63 of them, or no blank line before the checkpoint.
        """
        if len(body) > MAX_REQUEST_SIZE:
            raise MalformedError("add-checkpoint body is too large", Reason.TOO_LARGE)
        lines = []
        position = 0
        while True:
            end = body.find(b"\n", position)
            if end < 0:
                raise MalformedError("add-checkpoint body needs a blank line before the checkpoint")
            line = body[position:end]
            position = end + 1
            if not line:
                break
            lines.append(line)
            if len(lines) > MAX_PROOF_LINES + 1:
                raise MalformedError(f"at most {MAX_PROOF_LINES} consistency proof lines")
        if not lines:
            raise MalformedError("add-checkpoint body starts with an 'old <size>' line")
        try:
            first = lines[0].decode("ascii")
        except UnicodeDecodeError as exc:
            raise MalformedError("the old size line is ASCII") from exc
        match = _OLD_LINE.fullmatch(first)
        if match is None:
            raise MalformedError("the first line is 'old <size>' with no leading zeros")
        proof = []
        for line in lines[1:]:
            try:
                decoded = strict_b64decode(line.decode("ascii"), what="a consistency proof line")
            except UnicodeDecodeError as exc:
                raise MalformedError("a consistency proof line is base64") from exc
            if len(decoded) != HASH_SIZE:
                raise MalformedError("a consistency proof line is one 32-byte hash")
            proof.append(decoded)
        return cls(int(match.group(1)), tuple(proof), body[position:])


class Witness:
    """Cosigns checkpoints of the logs in its store, each consistent with the last it cosigned.

    Args:
        store: the durable per-log state.
        signer: the witness's cosignature key and name.
        clock: the time cosignatures carry (injected).
    """

    def __init__(self, store: WitnessStore, signer: CosignatureSigner, clock: Clock) -> None:
        self.store = store
        self.signer = signer
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> str:
        """Check an ``add-checkpoint`` request and, if it passes, record it and return the cosignature lines.

        Raises:
            MalformedError: the body, note or checkpoint cannot be parsed (400).
            VerificationError: refused; ``STATUS_BY_REASON[reason]`` is the HTTP status.
            CheckpointConflictError: a 409, with the witness's latest size.
            StorageError: the store failed (nothing was cosigned).
        """
        request = AddCheckpointRequest.parse(body)
        note = parse_note(request.note)
        origin = note.text.split("\n", 1)[0]
        state = self.store.find(origin)
        if state is None:
            raise VerificationError(Reason.LOG_UNKNOWN, f"this witness does not follow {origin!r}")
        verify_note(note, [Ed25519NoteVerifier.from_vkey(state.verifier_key)])
        checkpoint = Checkpoint.parse(note.text)
        if request.old_size > checkpoint.size:
            raise VerificationError(
                Reason.LOG_SHRANK, f"old size {request.old_size} exceeds the checkpoint's {checkpoint.size}"
            )
        if request.old_size != state.size:
            raise CheckpointConflictError(
                Reason.OLD_SIZE_MISMATCH,
                f"the witness last cosigned {origin!r} at size {state.size}, not {request.old_size}",
                state.size,
            )
        if checkpoint.size == state.size and checkpoint.root_hash != state.root_hash:
            raise CheckpointConflictError(
                Reason.SPLIT_VIEW,
                f"{origin!r} at size {state.size} already has another root hash",
                state.size,
            )
        verify_consistency(state.size, checkpoint.size, state.root_hash, checkpoint.root_hash, request.proof)
        now = self.clock()
        if not self.store.advance(
            origin,
            expected_size=state.size,
            expected_root=state.root_hash,
            size=checkpoint.size,
            root_hash=checkpoint.root_hash,
            checkpoint=note.to_bytes(),
            now=int(now.timestamp()),
        ):
            latest = self.store.get(origin).size
            raise CheckpointConflictError(
                Reason.OLD_SIZE_MISMATCH, f"{origin!r} moved on to size {latest} meanwhile", latest
            )
        return self.signer.cosign(note.text, int(now.timestamp())).line()
