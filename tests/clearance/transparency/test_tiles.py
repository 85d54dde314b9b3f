"""C2SP tlog-tiles: paths, geometry, appending from the right edge, and tiles from outside refused."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from clearance.errors import MalformedError, Reason, StorageError, VerificationError
from clearance.transparency.merkle import inclusion_proof, leaf_hash, root_of_leaf_hashes
from clearance.transparency.tile_reader import TileHashReader
from clearance.transparency.tile_writer import TileEdge, append_entries
from clearance.transparency.tiles import (
    EntryBundle,
    Tile,
    decode_bundle,
    encode_bundle,
    parse_path,
    right_edge,
    tile_in_tree,
)
from tests.clearance.transparency.tlog_world import MemoryLog


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (Tile(0, 0), "tile/0/000"),
        (Tile(0, 1_234_067), "tile/0/x001/x234/067"),
        (Tile(2, 1000, 17), "tile/2/x001/000.p/17"),
        (Tile(63, 5, 1), "tile/63/005.p/1"),
        (EntryBundle(1_234_067), "tile/entries/x001/x234/067"),
        (EntryBundle(0, 255), "tile/entries/000.p/255"),
    ],
)
def test_paths_round_trip(tile: Tile | EntryBundle, path: str) -> None:
    assert tile.path == path
    assert parse_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",
        "tile/0/0001",
        "tile/00/000",
        "tile/0/x000/001",  # an extra leading element
        "tile/0/x1/000",
        "tile/0/001/x002",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/07",
        "tile/64/000",
        "tile/-1/000",
        "tile/data/000",
        "tiles/0/000",
        "tile/0/",
        "tile/0/000.p",
        "tile/0/" + "x000/" * 40 + "000",
    ],
)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(MalformedError):
        parse_path(path)


def test_the_specs_example_tree_of_70000() -> None:
    assert right_edge(70_000) == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert right_edge(256) == [Tile(1, 0, 1)]
    assert right_edge(0) == []
    assert tile_in_tree(0, 272, 70_000) == Tile(0, 272)
    assert tile_in_tree(0, 274, 70_000) is None


def test_appending_in_any_batches_gives_the_rfc_root_and_every_tile_once_full() -> None:
    rng = random.Random(5)
    log = MemoryLog()
    while log.size < 3000:
        log.append([rng.randbytes(rng.randrange(0, 50)) for _ in range(rng.choice([0, 1, 7, 255, 256, 300]))])
        assert log.root == root_of_leaf_hashes(log.leaf_hashes())
    whole = append_entries(TileEdge(0), log.entries)
    assert whole.root == log.root
    assert {t.key: d for t, d in whole.tiles} == {k: v[: len(v)] for k, v in log.tiles.items()}
    assert {b.index: d for b, d in whole.bundles} == log.bundles


def test_an_edge_that_does_not_fit_its_size_is_refused() -> None:
    edge = append_entries(TileEdge(0), [b"a"] * 300).edge
    with pytest.raises(StorageError):
        TileEdge(301, edge.tiles, edge.bundle)
    with pytest.raises(StorageError):
        TileEdge(300, edge.tiles, edge.bundle[:-3])  # a bundle one entry short
    with pytest.raises(StorageError):
        TileEdge(300, edge.tiles, edge.bundle[:-1])  # a bundle cut inside an entry
    with pytest.raises(StorageError):
        TileEdge(300, ((edge.tiles[0][0], edge.tiles[0][1][:-32]), *edge.tiles[1:]), edge.bundle)


class TamperingReader:
    """Hands out the log's tiles after damaging them."""

    def __init__(self, log: MemoryLog, damage: object) -> None:
        self.log = log
        self.damage = damage

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        data = self.log.read_tiles(tiles)
        assert callable(self.damage)
        result = self.damage(list(tiles), data)
        assert isinstance(result, list)
        return result


@pytest.fixture(scope="module")
def big_log() -> MemoryLog:
    log = MemoryLog()
    log.append([i.to_bytes(4, "big") for i in range(70_000)])
    return log


def _at(tiles: list[Tile], path: str) -> int:
    return [t.path for t in tiles].index(path)


def _swap_hashes(tiles: list[Tile], data: list[bytes]) -> list[bytes]:
    i = _at(tiles, "tile/0/000")
    data[i] = data[i][32:64] + data[i][:32] + data[i][64:]
    return data


def _swap_tiles(tiles: list[Tile], data: list[bytes]) -> list[bytes]:
    i, j = _at(tiles, "tile/0/000"), _at(tiles, "tile/1/000")
    data[i], data[j] = data[j], data[i]
    return data


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda tiles, data: [d[:-32] for d in data], "truncated"),
        (lambda tiles, data: [d + b"\0" * 32 for d in data], "oversized"),
        (lambda tiles, data: [*data[:-1], data[-1][:-1]], "truncated"),
        (_swap_hashes, "does not match its parent"),
        (_swap_tiles, "does not match its parent"),
        (lambda tiles, data: data[::-1], "tile"),  # the whole answer reordered
        (lambda tiles, data: data[:-1], "returned"),
        (lambda tiles, data: [bytes(32) * t.width for t in tiles], "right-edge"),
    ],
)
def test_tiles_from_outside_are_refused(big_log: MemoryLog, damage: object, says: str) -> None:
    reader = TileHashReader(big_log.size, big_log.root, TamperingReader(big_log, damage))
    with pytest.raises(VerificationError, match=says) as refused:
        inclusion_proof(0, big_log.size, reader)
    assert refused.value.reason is Reason.TILE_INVALID


def test_tiles_of_another_tree_size_are_refused(big_log: MemoryLog) -> None:
    # The root of 70,000 entries with the tiles served for 69,999 does not check out.
    class ShorterTree:
        def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
            return big_log.read_tiles([tile_in_tree(t.level, t.index, 69_999) or t for t in tiles])

    with pytest.raises(VerificationError) as refused:
        inclusion_proof(5, big_log.size, TileHashReader(big_log.size, big_log.root, ShorterTree()))
    assert refused.value.reason is Reason.TILE_INVALID


def test_a_proof_from_tiles_reads_few_tiles(big_log: MemoryLog) -> None:
    big_log.reads = 0
    inclusion_proof(12_345, big_log.size, big_log.hash_reader())
    assert big_log.reads <= 6


def test_entry_bundles_are_checked_against_their_leaf_hashes(big_log: MemoryLog) -> None:
    reader = big_log.hash_reader()
    bundle = EntryBundle(3)
    data = big_log.bundles[3]
    assert reader.entries(bundle, data) == big_log.entries[768:1024]
    partial = EntryBundle(273, 112)
    assert reader.entries(partial, big_log.bundles[273]) == big_log.entries[69_888:]
    swapped = encode_bundle([big_log.entries[769], big_log.entries[768], *big_log.entries[770:1024]])
    with pytest.raises(VerificationError, match="does not match its leaf hash"):
        reader.entries(bundle, swapped)
    with pytest.raises(ValueError, match="not an entry bundle"):
        reader.entries(EntryBundle(273, 111), big_log.bundles[273])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (encode_bundle([b"a"] * 3), "3 entries, want 4"),
        (encode_bundle([b"a"] * 5), "more than 4"),
        (encode_bundle([b"a"] * 4)[:-1], "truncated"),
        (encode_bundle([b"a"] * 4) + b"\x00", "inside a length prefix"),
        (encode_bundle([b"a"] * 3) + b"\x01\x00", "inside an entry"),
    ],
)
def test_malformed_entry_bundles_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(VerificationError, match=says) as refused:
        decode_bundle(EntryBundle(0, 4), data)
    assert refused.value.reason is Reason.TILE_INVALID


def test_entries_too_long_for_a_bundle_are_refused() -> None:
    with pytest.raises(ValueError, match="65,535"):
        append_entries(TileEdge(0), [b"x" * 65_536])
    assert leaf_hash(b"x" * 65_535)  # the longest entry is fine
