"""Appending to a tiled log: from the right edge and new entries to new tiles and the new root.

A log that keeps its tiles as rows (one row per ``(level, index)``, a partial
tile's row growing until it is full) needs only its *right edge* to append:
the partial tile at each level and the partial entry bundle. From that and
the new entries, :func:`append_entries` returns every tile and bundle that
changed (new full ones and the new partial ones) and the new root hash, in
``O(entries + log n)`` hashing and without reading anything else.

A partial tile of width ``w`` is the first ``w`` hashes of any wider version
of the same tile, so a store serves ``tile/L/N.p/W`` by truncating its row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from clearance.errors import StorageError, VerificationError
from clearance.transparency.merkle import HASH_SIZE, MAX_TREE_SIZE
from clearance.transparency.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    EntryBundle,
    Tile,
    edge_root,
    iter_bundle,
    right_edge,
    split_hashes,
    tile_root,
)


@dataclass(frozen=True)
class TileEdge:
    """A log's size and its right edge: the partial tile of each level and the partial entry bundle.

    Attributes:
        size: entries in the log.
        tiles: ``(tile, data)`` for each tile of :func:`~clearance.transparency.tiles.right_edge`.
        bundle: the partial entry bundle's bytes (empty when ``size`` is a multiple of 256).
    """

    size: int
    tiles: tuple[tuple[Tile, bytes], ...] = ()
    bundle: bytes = b""

    def __post_init__(self) -> None:
        try:
            expected = right_edge(self.size)
        except ValueError as exc:
            raise StorageError(f"log edge: {exc}") from exc
        if [tile for tile, _ in self.tiles] != expected:
            raise StorageError(f"log edge does not match a log of {self.size} entries")
        if any(len(data) != tile.width * HASH_SIZE for tile, data in self.tiles):
            raise StorageError("log edge holds a tile of the wrong length")
        try:
            width = sum(1 for _ in iter_bundle(self.bundle))
        except VerificationError as exc:
            raise StorageError(f"log edge: {exc.detail}") from exc
        if width != self.size % TILE_WIDTH:
            raise StorageError("log edge holds a partial entry bundle of the wrong width")

    @property
    def root(self) -> bytes:
        """The root hash of the log."""
        return edge_root(self.tiles)


@dataclass(frozen=True)
class TileAppend:
    """What appending changed.

    Attributes:
        size: entries in the log now.
        root: the root hash now.
        tiles: every hash tile written: new full tiles and the new partial ones.
        bundles: every entry bundle written, likewise.
        edge: the right edge to append to next time.
    """

    size: int
    root: bytes
    tiles: tuple[tuple[Tile, bytes], ...]
    bundles: tuple[tuple[EntryBundle, bytes], ...]
    edge: TileEdge


def append_entries(edge: TileEdge, entries: Sequence[bytes]) -> TileAppend:
    """Append ``entries`` to the log whose right edge is ``edge``.

    Args:
        edge: the log's current right edge.
        entries: the new entries, in order.

    Raises:
        ValueError: an entry is longer than 65,535 bytes, or the log would grow past 2**63 - 1.
    """
    if edge.size + len(entries) > MAX_TREE_SIZE:
        raise ValueError("the log would exceed 2**63 - 1 entries")
    if any(len(entry) > MAX_ENTRY_SIZE for entry in entries):
        raise ValueError("an entry is longer than 65,535 bytes")
    levels: list[list[bytes]] = []
    for tile, data in edge.tiles:
        while len(levels) <= tile.level:
            levels.append([])
        levels[tile.level] = split_hashes(data)
    if not levels:
        levels.append([])
    size = edge.size
    bundle = list(iter_bundle(edge.bundle))
    written: list[tuple[Tile, bytes]] = []
    bundles: list[tuple[EntryBundle, bytes]] = []
    sha256 = hashlib.sha256
    position = 0
    while position < len(entries):
        room = TILE_WIDTH - len(levels[0])
        batch = entries[position : position + room]
        levels[0].extend([sha256(b"\x00" + entry).digest() for entry in batch])
        bundle.extend(batch)
        position += len(batch)
        size += len(batch)
        if len(levels[0]) == TILE_WIDTH:
            bundles.append((EntryBundle(size // TILE_WIDTH - 1), _bundle_bytes(bundle)))
            bundle = []
            _carry(levels, size, written)
    new_edge = TileEdge(
        size,
        tuple((tile, b"".join(levels[tile.level])) for tile in right_edge(size)),
        _bundle_bytes(bundle),
    )
    written.extend(new_edge.tiles)
    if bundle:
        bundles.append((EntryBundle(size // TILE_WIDTH, len(bundle)), new_edge.bundle))
    return TileAppend(size, new_edge.root, tuple(written), tuple(bundles), new_edge)


def _carry(levels: list[list[bytes]], size: int, written: list[tuple[Tile, bytes]]) -> None:
    """Write each full tile from level 0 up and push its hash into the level above."""
    level = 0
    while len(levels[level]) == TILE_WIDTH:
        data = b"".join(levels[level])
        index = (size >> (TILE_HEIGHT * (level + 1))) - 1
        written.append((Tile(level, index), data))
        levels[level] = []
        if len(levels) == level + 1:
            levels.append([])
        levels[level + 1].append(tile_root(data))
        level += 1


def _bundle_bytes(entries: Sequence[bytes]) -> bytes:
    return b"".join(len(entry).to_bytes(2, "big") + entry for entry in entries)
