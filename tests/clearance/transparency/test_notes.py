"""C2SP signed-note, tlog-checkpoint and tlog-cosignature: signing, verifying, and strict refusals."""

from __future__ import annotations

import base64
import datetime
import os

import pytest

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.keys import SigningKey
from clearance.transparency.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from clearance.transparency.cosignature import CosignatureSigner, CosignatureVerifier, verify_cosignatures
from clearance.transparency.note import (
    MAX_NOTE_SIZE,
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    NoteSignature,
    VerifierKey,
    key_id,
    open_note,
    parse_note,
    sign_note,
)

ORIGIN = "registry.jp.clearance.example/log"
NOW = datetime.datetime(2026, 9, 21, tzinfo=datetime.UTC)

# Published with golang.org/x/mod/sumdb/note's tests: a note Go signed, and Go's verifier key.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_SIG = "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
GO_OTHER_SIG = "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def test_a_note_go_signed_opens_here_and_unknown_signatures_are_ignored() -> None:
    verifier = Ed25519NoteVerifier.from_vkey(GO_VKEY)
    assert verifier.vkey == GO_VKEY
    opened = open_note((GO_TEXT + "\n" + GO_SIG + GO_OTHER_SIG).encode(), [verifier])
    assert opened.text == GO_TEXT
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert [s.name for s in opened.unknown] == ["EnochRoot"]
    with pytest.raises(VerificationError) as refused:
        open_note((GO_TEXT.replace("know", "knew") + "\n" + GO_SIG).encode(), [verifier])
    assert refused.value.reason is Reason.BAD_SIGNATURE


def test_sign_and_open_round_trip() -> None:
    signer = Ed25519NoteSigner("example.com/log", SigningKey.generate())
    note = sign_note("hello\n\nworld\n", [signer])
    opened = open_note(note, [Ed25519NoteVerifier.from_vkey(signer.verifier.vkey)])
    assert opened.text == "hello\n\nworld\n"
    assert parse_note(note).to_bytes() == note


def test_a_note_no_known_key_signed_is_refused() -> None:
    signer = Ed25519NoteSigner("example.com/log", SigningKey.generate())
    same_name = Ed25519NoteVerifier("example.com/log", SigningKey.generate().public)
    with pytest.raises(VerificationError) as refused:
        open_note(sign_note("hello\n", [signer]), [same_name])
    assert refused.value.reason is Reason.UNKNOWN_KEY


def test_a_known_key_with_a_bad_signature_refuses_the_whole_note() -> None:
    signer = Ed25519NoteSigner("example.com/log", SigningKey.generate())
    other = Ed25519NoteSigner("example.com/other", SigningKey.generate())
    text = "hello\n"
    forged = NoteSignature(signer.name, signer.verifier.key_id, other.sign(text).signature)
    note = (text + "\n" + other.sign(text).line() + forged.line()).encode()
    with pytest.raises(VerificationError) as refused:
        open_note(note, [signer.verifier, other.verifier])
    assert refused.value.reason is Reason.BAD_SIGNATURE


SIG = "\u2014 a AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


@pytest.mark.parametrize(
    "note",
    [
        b"no signatures\n",
        b"text\n\n",
        b"text\n\n" + SIG.encode()[:-1],
        b"text\n\n- a AAAAAAA=\n",
        ("text\n\n\u2014 a+b " + SIG.split(" ")[2]).encode(),
        ("text\n\n\u2014 a AAAA\n").encode(),  # a signature shorter than a key ID and one byte
        ("text\n\n\u2014 a AAAAAAA\n").encode(),  # unpadded
        ("text\n\n\u2014 a AAAAAAAAAB==\n").encode(),  # non-canonical padding bits
        ("text\n\n\u2014 a  AAAAAAAAAAAAAAA=\n").encode(),
        ("te\txt\n\n" + SIG).encode(),
        ("text\r\n\n" + SIG).encode(),
        b"text\xff\n\n" + SIG.encode(),
        ("text\n\n" + SIG * 65).encode(),
        b"x" * (MAX_NOTE_SIZE - 10) + ("\n\n" + SIG).encode(),
    ],
)
def test_malformed_notes_are_refused_before_any_key_is_used(note: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_note(note)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case hex
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(MalformedError):
        Ed25519NoteVerifier.from_vkey(vkey)


def test_a_cosignature_key_is_not_a_log_key_and_back() -> None:
    witness = CosignatureSigner("oversight.example/w1", SigningKey.generate())
    log = Ed25519NoteSigner("oversight.example/w1", SigningKey.generate())
    with pytest.raises(MalformedError):
        Ed25519NoteVerifier.from_vkey(witness.verifier.vkey)
    with pytest.raises(MalformedError):
        CosignatureVerifier.from_vkey(log.verifier.vkey)
    parsed = VerifierKey.parse(witness.verifier.vkey)
    assert parsed.signature_type == 0x04
    assert parsed.key_id == key_id(witness.name, 0x04, parsed.public_key)


def test_checkpoints_round_trip_and_open_only_for_their_log() -> None:
    log = Ed25519NoteSigner(ORIGIN, SigningKey.generate())
    checkpoint = Checkpoint(ORIGIN, 20_852_163, os.urandom(32), ("ext",))
    note = sign_checkpoint(checkpoint, log)
    assert open_checkpoint(note, log.verifier, origin=ORIGIN).checkpoint == checkpoint
    with pytest.raises(VerificationError) as refused:
        open_checkpoint(note, log.verifier, origin="registry.us.clearance.example/log")
    assert refused.value.reason is Reason.CHECKPOINT_INVALID
    stranger = Ed25519NoteSigner(ORIGIN, SigningKey.generate())
    with pytest.raises(VerificationError) as unknown:
        open_checkpoint(note, stranger.verifier, origin=ORIGIN)
    assert unknown.value.reason is Reason.UNKNOWN_KEY


ROOT = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n5\n",
        f"{ORIGIN}\n05\n{ROOT}\n",
        f"{ORIGIN}\n-5\n{ROOT}\n",
        f"{ORIGIN}\n9223372036854775808\n{ROOT}\n",
        f"{ORIGIN}\n5\n{ROOT[:-2]}\n",
        f"{ORIGIN}\n5\n{base64.b64encode(bytes(31)).decode()}\n",
        f"{ORIGIN}\n5\n{ROOT}\n\n",
        f"\n5\n{ROOT}\n",
        f"{ORIGIN}\n5\n{ROOT}",
        f"{ORIGIN}\n 5\n{ROOT}\n",
    ],
)
def test_malformed_checkpoint_bodies_are_refused(text: str) -> None:
    with pytest.raises(VerificationError) as refused:
        Checkpoint.parse(text)
    assert refused.value.reason is Reason.CHECKPOINT_INVALID


def cosigned(witnesses: list[CosignatureSigner], *, at: int) -> tuple[bytes, Ed25519NoteSigner]:
    log = Ed25519NoteSigner(ORIGIN, SigningKey.generate())
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, os.urandom(32)), log)
    text = parse_note(note).text
    return note + "".join(w.cosign(text, at).line() for w in witnesses).encode(), log


def test_cosignatures_verify_to_a_threshold() -> None:
    w1, w2, w3 = (CosignatureSigner(f"w{i}.example", SigningKey.generate()) for i in range(3))
    at = int(NOW.timestamp())
    note, log = cosigned([w1, w2], at=at)
    result = verify_cosignatures(
        note,
        log=log.verifier,
        origin=ORIGIN,
        witnesses=[w1.verifier, w2.verifier, w3.verifier],
        threshold=2,
        now=NOW,
    )
    assert result.cosigned_at == {"w0.example": NOW, "w1.example": NOW}
    with pytest.raises(VerificationError) as short:
        verify_cosignatures(
            note, log=log.verifier, origin=ORIGIN, witnesses=[w1.verifier, w3.verifier], threshold=2, now=NOW
        )
    assert short.value.reason is Reason.COSIGNATURES_INSUFFICIENT


def test_a_witness_not_trusted_does_not_count_and_a_forged_one_refuses() -> None:
    trusted = CosignatureSigner("w.example", SigningKey.generate())
    outsider = CosignatureSigner("outsider.example", SigningKey.generate())
    at = int(NOW.timestamp())
    note, log = cosigned([outsider], at=at)
    with pytest.raises(VerificationError) as untrusted:
        verify_cosignatures(
            note, log=log.verifier, origin=ORIGIN, witnesses=[trusted.verifier], threshold=1, now=NOW
        )
    assert untrusted.value.reason is Reason.COSIGNATURES_INSUFFICIENT
    text = parse_note(note).text
    forged = NoteSignature(trusted.name, trusted.verifier.key_id, outsider.cosign(text, at).signature)
    with pytest.raises(VerificationError) as refused:
        verify_cosignatures(
            note + forged.line().encode(),
            log=log.verifier,
            origin=ORIGIN,
            witnesses=[trusted.verifier],
            threshold=1,
            now=NOW,
        )
    assert refused.value.reason is Reason.COSIGNATURE_INVALID


def test_a_cosignature_from_the_future_is_refused() -> None:
    witness = CosignatureSigner("w.example", SigningKey.generate())
    note, log = cosigned([witness], at=int(NOW.timestamp()) + 3600)
    with pytest.raises(VerificationError) as refused:
        verify_cosignatures(
            note, log=log.verifier, origin=ORIGIN, witnesses=[witness.verifier], threshold=1, now=NOW
        )
    assert refused.value.reason is Reason.COSIGNATURE_INVALID
