"""The witness's rules on a real SQLite store: it cosigns consistent checkpoints only, and a refusal changes nothing."""

from __future__ import annotations

import base64
import datetime
import threading
from pathlib import Path

import pytest

from clearance.errors import ConflictError, MalformedError, Reason, VerificationError
from clearance.keys import SigningKey
from clearance.transparency.cosignature import CosignatureSigner, verify_cosignatures
from clearance.transparency.note import Ed25519NoteSigner, parse_note
from oversight.witness import STATUS_BY_REASON, CheckpointConflictError, Witness
from oversight.witness_store import LogState, WitnessStore
from tests.oversight.witnessed_log import WitnessedLog

NOW = datetime.datetime(2026, 9, 21, 12, tzinfo=datetime.UTC)


@pytest.fixture
def registry_log() -> WitnessedLog:
    log = WitnessedLog.create()
    log.grow(10)
    return log


@pytest.fixture
def witness(tmp_path: Path, registry_log: WitnessedLog) -> Witness:
    store = WitnessStore(tmp_path / "witness.db")
    store.add_log(registry_log.origin, registry_log.vkey)
    return Witness(
        store, CosignatureSigner("oversight.jp.example/witness", SigningKey.generate()), lambda: NOW
    )


def state(witness: Witness, log: WitnessedLog) -> LogState:
    return witness.store.get(log.origin)


def test_it_cosigns_a_growing_log_and_the_cosignature_verifies(
    witness: Witness, registry_log: WitnessedLog
) -> None:
    line = witness.add_checkpoint(registry_log.request(0))
    assert state(witness, registry_log).size == 10

    registry_log.grow(1000)
    second = witness.add_checkpoint(registry_log.request(10))

    cosigned = registry_log.checkpoint() + second.encode()
    result = verify_cosignatures(
        cosigned,
        log=registry_log.signer.verifier,
        origin=registry_log.origin,
        witnesses=[witness.signer.verifier],
        threshold=1,
        now=NOW,
    )
    assert result.cosigned_at == {witness.signer.name: NOW}
    assert line.startswith("\u2014 oversight.jp.example/witness ")
    recorded = state(witness, registry_log)
    assert (recorded.size, recorded.root_hash) == (1010, registry_log.log.root)
    assert recorded.checkpoint == registry_log.checkpoint()
    # The same checkpoint again is cosigned again, and changes nothing.
    witness.add_checkpoint(registry_log.request(1010))
    assert state(witness, registry_log).size == 1010


def refused(
    witness: Witness, log: WitnessedLog, body: bytes, reason: Reason, status: int
) -> VerificationError:
    before = witness.store.logs()
    with pytest.raises(VerificationError) as error:
        witness.add_checkpoint(body)
    assert error.value.reason is reason
    assert STATUS_BY_REASON[error.value.reason] == status
    assert witness.store.logs() == before  # a refusal changes nothing
    return error.value


def test_an_unknown_log_is_refused_404(witness: Witness) -> None:
    stranger = WitnessedLog.create("registry.us.clearance.example/log")
    stranger.grow(3)
    refused(witness, stranger, stranger.request(0), Reason.LOG_UNKNOWN, 404)


def test_a_checkpoint_signed_by_another_key_is_refused_403(
    witness: Witness, registry_log: WitnessedLog
) -> None:
    impostor = Ed25519NoteSigner(registry_log.origin, SigningKey.generate())
    body = registry_log.request(0, note=registry_log.checkpoint(signer=impostor))
    refused(witness, registry_log, body, Reason.UNKNOWN_KEY, 403)


def test_a_forged_log_signature_is_refused_403(witness: Witness, registry_log: WitnessedLog) -> None:
    note = registry_log.checkpoint().decode().replace("\n10\n", "\n11\n").encode()
    refused(witness, registry_log, registry_log.request(0, note=note), Reason.BAD_SIGNATURE, 403)


def test_a_wrong_old_size_is_409_with_the_witness_size(witness: Witness, registry_log: WitnessedLog) -> None:
    witness.add_checkpoint(registry_log.request(0))
    registry_log.grow(5)
    error = refused(witness, registry_log, registry_log.request(3), Reason.OLD_SIZE_MISMATCH, 409)
    assert isinstance(error, CheckpointConflictError)
    assert error.latest_size == 10


def test_a_split_view_is_refused_409(witness: Witness, registry_log: WitnessedLog) -> None:
    witness.add_checkpoint(registry_log.request(0))
    fork = WitnessedLog(registry_log.origin, registry_log.signer)  # same origin and key, other entries
    fork.grow(10, tag=b"fork")
    error = refused(witness, fork, fork.request(10), Reason.SPLIT_VIEW, 409)
    assert isinstance(error, CheckpointConflictError)
    assert error.latest_size == 10


def test_a_checkpoint_inconsistent_with_the_cosigned_one_is_refused_422(
    witness: Witness, registry_log: WitnessedLog
) -> None:
    witness.add_checkpoint(registry_log.request(0))
    fork = WitnessedLog(registry_log.origin, registry_log.signer)
    fork.grow(20, tag=b"fork")
    # The fork's own proof from its size 10: it does not lead from the witness's root.
    refused(witness, fork, fork.request(10), Reason.CONSISTENCY_PROOF_INVALID, 422)
    registry_log.grow(10)
    refused(witness, registry_log, registry_log.request(10, proof=[]), Reason.CONSISTENCY_PROOF_INVALID, 422)
    proof = registry_log.proof(10)
    tampered = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    refused(
        witness, registry_log, registry_log.request(10, proof=tampered), Reason.CONSISTENCY_PROOF_INVALID, 422
    )


def test_a_shrinking_log_is_refused(witness: Witness, registry_log: WitnessedLog) -> None:
    registry_log.grow(10)
    witness.add_checkpoint(registry_log.request(0))  # the witness is at 20
    # Old size above the new size: 400.
    refused(witness, registry_log, registry_log.request(20, new=10, proof=[]), Reason.LOG_SHRANK, 400)
    # Claiming the witness is at 10 to slip a smaller tree in: 409 with the real size.
    error = refused(
        witness, registry_log, registry_log.request(10, new=10, proof=[]), Reason.OLD_SIZE_MISMATCH, 409
    )
    assert isinstance(error, CheckpointConflictError)
    assert error.latest_size == 20


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n",
        b"old 00\n\n",
        b"old -1\n\n",
        b"old 1 \n\n",
        b"new 0\n\n",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + base64.b64encode(bytes(31)) + b"\n\n",
        b"old 0\n" + (base64.b64encode(bytes(32)) + b"\n") * 64 + b"\n",
        b"old 0\n\nnot a note\n",
        b"old 0\n\n" + b"x" * 200_000,
    ],
)
def test_malformed_requests_are_refused_400(
    witness: Witness, registry_log: WitnessedLog, body: bytes
) -> None:
    before = witness.store.logs()
    with pytest.raises(MalformedError) as error:
        witness.add_checkpoint(body)
    assert STATUS_BY_REASON[error.value.reason] == 400
    assert witness.store.logs() == before


def test_a_malformed_checkpoint_body_signed_by_the_log_is_refused_400(
    witness: Witness, registry_log: WitnessedLog
) -> None:
    note = registry_log.signer.sign(f"{registry_log.origin}\n010\nAAAA\n")
    text = f"{registry_log.origin}\n010\nAAAA\n"
    body = b"old 0\n\n" + (text + "\n" + note.line()).encode()
    refused(witness, registry_log, body, Reason.CHECKPOINT_INVALID, 400)


def test_concurrent_requests_from_the_same_state_advance_it_once(
    witness: Witness, registry_log: WitnessedLog
) -> None:
    witness.add_checkpoint(registry_log.request(0))
    registry_log.grow(5)
    first = registry_log.request(10)
    registry_log.grow(5)
    second = registry_log.request(10)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit(body: bytes) -> None:
        barrier.wait()
        try:
            witness.add_checkpoint(body)
            outcomes.append("cosigned")
        except CheckpointConflictError as exc:
            outcomes.append(f"409 {exc.latest_size}")

    threads = [threading.Thread(target=submit, args=(body,)) for body in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes)[0] == "409 15" or sorted(outcomes)[0] == "409 20"
    assert outcomes.count("cosigned") == 1
    assert state(witness, registry_log).size in (15, 20)


def test_the_store_compare_and_swap_refuses_a_stale_update(tmp_path: Path) -> None:
    store = WitnessStore(tmp_path / "w.db")
    store.add_log("o", "vkey")
    root = store.get("o").root_hash
    assert store.advance(
        "o", expected_size=0, expected_root=root, size=5, root_hash=b"a" * 32, checkpoint=b"c", now=1
    )
    assert not store.advance(
        "o", expected_size=0, expected_root=root, size=3, root_hash=b"b" * 32, checkpoint=b"d", now=2
    )
    assert store.get("o").size == 5
    with pytest.raises(ConflictError):
        store.add_log("o", "another key")


def test_each_cosignature_is_over_the_checkpoint_text(witness: Witness, registry_log: WitnessedLog) -> None:
    line = witness.add_checkpoint(registry_log.request(0))
    note = parse_note(registry_log.checkpoint() + line.encode())
    assert note.signatures[-1].key_id == witness.signer.verifier.key_id
    witness.signer.verifier.verify(note.text.encode(), note.signatures[-1].signature)
