"""Our checkpoints, notes, cosignatures, tiles and proofs, judged by Go's golang.org/x/mod/sumdb.

x/mod's ``note`` opens our signed notes and checkpoints with our verifier keys;
x/mod's ``tlog`` reads our tile directory through ``TileHashReader`` (which
authenticates every tile against the root), parses every path with
``ParseTilePath``, checks our inclusion and consistency proofs with
``CheckRecord``/``CheckTree`` and builds its own with ``ProveRecord``/``ProveTree``
for comparison. ``cosignature/v1`` is not in x/mod: the glue opens cosigned notes
with ``note.Open`` and a verifier written from the spec on Go's ``crypto/ed25519``.
Each check also runs on a tampered input, which Go must refuse.
"""

from __future__ import annotations

import base64
import datetime
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from clearance.errors import Reason, VerificationError
from clearance.keys import SigningKey
from clearance.transparency.checkpoint import Checkpoint, sign_checkpoint
from clearance.transparency.cosignature import CosignatureSigner
from clearance.transparency.entries import EventType, TrustEvent
from clearance.transparency.merkle import consistency_proof, inclusion_proof, leaf_hash, node_hash
from clearance.transparency.note import (
    Ed25519NoteSigner,
    NoteSignature,
    ed25519_public_bytes,
    parse_note,
    sign_note,
)
from clearance.transparency.tile_reader import TileHashReader
from clearance.transparency.tiles import Tile
from tests.clearance.transparency.conftest import GoTlog
from tests.clearance.transparency.tlog_world import MemoryLog, b64
from tests.factories import NOW

NOW_UTC = datetime.datetime.fromtimestamp(NOW, datetime.UTC)

ORIGIN = "registry.jp.clearance.example/log"


def trust_events(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    types = list(EventType)
    events = []
    for _ in range(count):
        event_type = rng.choice(types)
        level = rng.choice(["SECRET", "TOP_SECRET", None]) if event_type.concerns_credential else None
        events.append(TrustEvent.of(event_type, rng.randbytes(64), at=NOW_UTC, level=level).encode())
    return events


@pytest.fixture(scope="module")
def grown_log() -> MemoryLog:
    """A log of 70,000 entries (two tile levels full, three partial), grown in uneven batches."""
    log = MemoryLog()
    rng = random.Random(3)
    entries = trust_events(70_000)
    position = 0
    while position < len(entries):
        step = rng.choice([1, 5, 255, 256, 257, 1000, 4000])
        log.append(entries[position : position + step])
        position += step
    return log


def test_go_reads_our_tiles_and_every_path_and_bundle(
    go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path
) -> None:
    grown_log.write_dir(tmp_path)

    verdict = go_tlog.check(
        {"dir": str(tmp_path), "size": grown_log.size, "root": b64(grown_log.root), "check_files": True}
    )

    assert verdict["tree"] == {"ok": True, "error": ""}
    assert verdict["files"] == {"ok": True, "error": ""}
    # 274 level-0 tiles and bundles, 2 level-1 tiles, 1 level-2 tile (the spec's 70,000 example)
    assert verdict["files_checked"] == 2 * 274 + 2 + 1


def go_refuses_leaf(go_tlog: GoTlog, log: MemoryLog, directory: Path, index: int) -> bool:
    """Whether Go, reading the tiles in ``directory``, cannot prove leaf ``index`` against the log's root.

    x/mod 0.7.0's ``TileHashReader`` starts authenticating full tiles at
    position ``len(stx)`` (the number of subtree hashes the root is folded
    from) instead of the number of distinct tiles holding them, so in a tree
    like this one it hands out hashes from some full tiles without checking
    them. Go's ``ProveRecord`` may then build a proof from a tampered tile;
    Go's ``CheckRecord`` must then refuse that proof against the trusted root.
    """
    request = {"dir": str(directory), "size": log.size, "root": b64(log.root)}
    built = go_tlog.check({**request, "prove_inclusion": [index]})["inclusion_proofs"][0]
    if built and built[0].startswith("error"):
        return True
    leaf = b64(leaf_hash(log.entries[index]))
    verdict = go_tlog.check({**request, "inclusion": [{"index": index, "leaf_hash": leaf, "proof": built}]})
    return not verdict["inclusion"][0]["ok"]


@pytest.mark.parametrize(
    ("victim", "damage"),
    [
        ("tile/0/000", lambda data: data[:-32]),  # truncated
        ("tile/0/000", lambda data: data + b"\x00" * 32),  # oversized
        ("tile/0/000", lambda data: data[32:64] + data[:32] + data[64:]),  # two hashes reordered
        ("tile/1/000", lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:]),  # one bit
        ("tile/0/273.p/112", lambda data: data[:-1]),  # the partial right edge
    ],
)
def test_go_refuses_our_tiles_when_tampered(
    go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path, victim: str, damage: Callable[[bytes], bytes]
) -> None:
    grown_log.write_dir(tmp_path)
    assert go_refuses_leaf(go_tlog, grown_log, tmp_path, 0) is False
    target = tmp_path / victim
    target.write_bytes(damage(target.read_bytes()))

    assert go_refuses_leaf(go_tlog, grown_log, tmp_path, 0)


def test_go_refuses_two_swapped_tiles(go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path) -> None:
    grown_log.write_dir(tmp_path)
    first, second = tmp_path / "tile/0/000", tmp_path / "tile/0/001"
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)

    assert go_refuses_leaf(go_tlog, grown_log, tmp_path, 3)


def test_go_tile_reader_misses_a_reordered_full_tile_that_ours_refuses(
    go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path
) -> None:
    """The x/mod 0.7.0 weakness above, pinned: if this starts failing, Go fixed it."""
    grown_log.write_dir(tmp_path)
    target = tmp_path / "tile/0/000"
    data = target.read_bytes()
    target.write_bytes(data[32:64] + data[:32] + data[64:])

    built = go_tlog.check(
        {"dir": str(tmp_path), "size": grown_log.size, "root": b64(grown_log.root), "prove_inclusion": [0]}
    )["inclusion_proofs"][0]

    assert not built[0].startswith("error")
    assert built[0] == b64(leaf_hash(grown_log.entries[0]))  # its own hash, served as its sibling's
    tampered = {**grown_log.tiles, (0, 0): target.read_bytes()}
    reader = TileHashReader(grown_log.size, grown_log.root, MemoryLog(tiles=tampered))
    with pytest.raises(VerificationError) as refused:
        inclusion_proof(0, grown_log.size, reader)
    assert refused.value.reason is Reason.TILE_INVALID


def test_go_refuses_a_tampered_entry_bundle(go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path) -> None:
    grown_log.write_dir(tmp_path)
    bundle = tmp_path / "tile/entries/001"
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    bundle.write_bytes(bytes(data))

    verdict = go_tlog.check(
        {"dir": str(tmp_path), "size": grown_log.size, "root": b64(grown_log.root), "check_files": True}
    )

    assert verdict["tree"]["ok"]
    assert not verdict["files"]["ok"]
    assert "does not match its leaf hash" in verdict["files"]["error"]


def test_go_accepts_our_proofs_and_builds_the_same_ones(
    go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path
) -> None:
    grown_log.write_dir(tmp_path)
    size = grown_log.size
    reader = grown_log.hash_reader()
    leaves = [0, 1, 255, 256, 65_535, 65_536, 69_887, 69_888, size - 1]
    old_sizes = [1, 2, 3, 256, 257, 4096, 65_536, 65_537, 69_999]
    inclusion = [
        {
            "index": i,
            "leaf_hash": b64(leaf_hash(grown_log.entries[i])),
            "proof": [b64(h) for h in inclusion_proof(i, size, reader)],
        }
        for i in leaves
    ]
    consistency = [
        {
            "old_size": m,
            "old_root": b64(grown_log.roots.get(m) or _root_of(grown_log, m)),
            "proof": [b64(h) for h in consistency_proof(m, size, reader)],
        }
        for m in old_sizes
    ]

    verdict = go_tlog.check(
        {
            "dir": str(tmp_path),
            "size": size,
            "root": b64(grown_log.root),
            "inclusion": inclusion,
            "consistency": consistency,
            "prove_inclusion": leaves,
            "prove_consistency": old_sizes,
        }
    )

    assert verdict["inclusion"] == [{"ok": True, "error": ""}] * len(leaves)
    assert verdict["consistency"] == [{"ok": True, "error": ""}] * len(old_sizes)
    assert verdict["inclusion_proofs"] == [item["proof"] for item in inclusion]
    assert verdict["consistency_proofs"] == [item["proof"] for item in consistency]


def _root_of(log: MemoryLog, size: int) -> bytes:
    from clearance.transparency.merkle import root_of_leaf_hashes

    return root_of_leaf_hashes(log.leaf_hashes()[:size])


def test_go_refuses_our_proofs_when_tampered(go_tlog: GoTlog, grown_log: MemoryLog, tmp_path: Path) -> None:
    grown_log.write_dir(tmp_path)
    size, reader = grown_log.size, grown_log.hash_reader()
    good = [b64(h) for h in inclusion_proof(1000, size, reader)]
    leaf = b64(leaf_hash(grown_log.entries[1000]))
    other_leaf = b64(leaf_hash(grown_log.entries[1001]))
    flipped = [b64(bytes([base64.b64decode(good[0])[0] ^ 1]) + base64.b64decode(good[0])[1:]), *good[1:]]
    old = 4096
    old_root = b64(_root_of(grown_log, old))
    cons = [b64(h) for h in consistency_proof(old, size, reader)]

    verdict = go_tlog.check(
        {
            "dir": str(tmp_path),
            "size": size,
            "root": b64(grown_log.root),
            "inclusion": [
                {"index": 1000, "leaf_hash": other_leaf, "proof": good},  # wrong leaf
                {"index": 1001, "leaf_hash": leaf, "proof": good},  # wrong index
                {"index": 1000, "leaf_hash": leaf, "proof": good[:-1]},  # truncated
                {"index": 1000, "leaf_hash": leaf, "proof": [*good, good[0]]},  # extended
                {"index": 1000, "leaf_hash": leaf, "proof": flipped},
            ],
            "consistency": [
                {
                    "old_size": old,
                    "old_root": b64(node_hash(b"a" * 32, b"b" * 32)),
                    "proof": cons,
                },  # split view
                {"old_size": old + 1, "old_root": old_root, "proof": cons},  # wrong size
                {"old_size": old, "old_root": old_root, "proof": cons[1:]},  # truncated
            ],
        }
    )

    assert [v["ok"] for v in verdict["inclusion"]] == [False] * 5
    assert [v["ok"] for v in verdict["consistency"]] == [False] * 3


def test_go_parses_our_tile_paths_as_the_same_tiles(go_tlog: GoTlog, tmp_path: Path) -> None:
    # A large index written as path elements: Go's ParseTilePath reads each file path back.
    log = MemoryLog()
    log.append([b"x"])
    for tile in (
        Tile(0, 1_234_067),
        Tile(3, 5, 17),
        Tile(0, 999, 255),
        Tile(2, 1000),
        Tile(1, 1_000_000_000, 1),
    ):
        target = tmp_path / tile.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    assert Tile(0, 1_234_067).path == "tile/0/x001/x234/067"

    verdict = go_tlog.check({"dir": str(tmp_path), "size": 1, "root": b64(log.root), "check_files": True})

    assert verdict["files"] == {"ok": True, "error": ""}
    assert verdict["files_checked"] == 5


def test_go_opens_our_checkpoints_and_refuses_tampered_ones(go_tlog: GoTlog) -> None:
    log_key = Ed25519NoteSigner(ORIGIN, SigningKey.generate())
    stranger = Ed25519NoteSigner(ORIGIN, SigningKey.generate())
    checkpoint = Checkpoint(ORIGIN, 70_000, os.urandom(32), ("an extension line",))
    note = sign_checkpoint(checkpoint, log_key).decode()
    tampered = note.replace("70000", "70001")
    other_key_note = sign_checkpoint(checkpoint, stranger).decode()

    verdict = go_tlog.check(
        {
            "notes": [
                {"note": note, "vkeys": [log_key.verifier.vkey]},
                {"note": tampered, "vkeys": [log_key.verifier.vkey]},
                {"note": other_key_note, "vkeys": [log_key.verifier.vkey]},
                {
                    "note": sign_note("multi\n\nline text\n", [log_key]).decode(),
                    "vkeys": [log_key.verifier.vkey],
                },
            ]
        }
    )

    good, bad, unknown, multi = verdict["notes"]
    assert good["ok"]
    assert good["text"] == checkpoint.to_text()
    assert good["verified"] == [f"{ORIGIN}+{log_key.verifier.key_id:08x}"]
    assert not bad["ok"]
    assert "invalid signature" in bad["error"]
    assert not unknown["ok"]
    assert "no verifiable signatures" in unknown["error"]
    assert multi["ok"]
    assert multi["text"] == "multi\n\nline text\n"


def test_go_verifies_our_cosignatures_and_refuses_forged_ones(go_tlog: GoTlog) -> None:
    log_key = Ed25519NoteSigner(ORIGIN, SigningKey.generate())
    witness = CosignatureSigner("oversight.jp.example/witness", SigningKey.generate())
    impostor = CosignatureSigner("oversight.jp.example/witness", SigningKey.generate())
    checkpoint = Checkpoint(ORIGIN, 12, os.urandom(32))
    note = sign_checkpoint(checkpoint, log_key)
    text = parse_note(note).text
    cosigned = note.decode() + witness.cosign(text, 1_790_000_000).line()
    # the impostor's signature under the witness's name and key ID
    forged_signature = impostor.cosign(text, 1_790_000_000).signature
    forged = note.decode() + NoteSignature(witness.name, witness.verifier.key_id, forged_signature).line()
    # the witness's cosignature with its timestamp changed after signing
    genuine = witness.cosign(text, 1_790_000_000)
    moved = (1_790_000_001).to_bytes(8, "big") + genuine.signature[8:]
    retimed = note.decode() + NoteSignature(witness.name, genuine.key_id, moved).line()
    cosigner = {"name": witness.name, "key": b64(ed25519_public_bytes(witness.verifier.key))}

    verdict = go_tlog.check(
        {
            "notes": [
                {"note": cosigned, "vkeys": [], "cosigners": [cosigner]},
                {"note": cosigned, "vkeys": [log_key.verifier.vkey], "cosigners": [cosigner]},
                {"note": retimed, "vkeys": [], "cosigners": [cosigner]},
                {"note": forged, "vkeys": [], "cosigners": [cosigner]},
            ]
        }
    )

    only_witness, both, retimed_verdict, forged_verdict = verdict["notes"]
    assert only_witness["ok"]
    assert only_witness["verified"] == [f"{witness.name}+{witness.verifier.key_id:08x}"]
    assert both["ok"]
    assert len(both["verified"]) == 2
    assert not retimed_verdict["ok"]
    assert not forged_verdict["ok"]
