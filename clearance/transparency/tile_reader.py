"""Reading a tiled log: proofs from tiles, each tile checked against a checkpoint's root first.

A :class:`TileReader` fetches tile bytes (from a store, a directory, or
HTTPS); a :class:`TileHashReader` turns them into the stored hashes that
:mod:`clearance.transparency.merkle` builds proofs from, and returns nothing
it has not authenticated:

1. the right-edge partial tiles of the tree must fold to the root hash the
   caller trusts (from a verified checkpoint);
2. every full tile must hash to its entry in its parent tile, and the chain of
   parents ends in a right-edge tile, authenticated by step 1.

So a truncated, oversized, reordered or altered tile is refused with
``tile_invalid`` before any proof is built from it. Proving one leaf in a
tree of ``n`` entries reads ``O(log n)`` tiles (about two per 256-fold of
``n``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clearance.errors import Reason, VerificationError
from clearance.transparency.merkle import HASH_SIZE, MAX_TREE_SIZE, Subtree, leaf_hash
from clearance.transparency.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    EntryBundle,
    Tile,
    check_tile_data,
    decode_bundle,
    edge_root,
    hash_from_tile,
    right_edge,
    split_hashes,
    tile_for_subtree,
    tile_in_tree,
    tile_root,
)


class TileReader(Protocol):
    """Fetches tiles; the bytes may come from anywhere and are checked by the caller."""

    def read_tiles(self, tiles: Sequence[Tile]) -> Sequence[bytes]:
        """The bytes of each tile, in the order asked.

        Raises:
            NotFoundError: a tile does not exist.
            TransportError: the tiles could not be fetched.
        """
        ...


class TileHashReader:
    """Stored hashes of the tree of ``size`` entries with root ``root``, read from tiles and authenticated.

    Implements :class:`~clearance.transparency.merkle.HashReader`.
    """

    def __init__(self, size: int, root: bytes, reader: TileReader) -> None:
        if not 0 <= size <= MAX_TREE_SIZE or len(root) != HASH_SIZE:
            raise ValueError("a tree size in range and a 32-byte root hash are needed")
        self.size = size
        self.root = root
        self._reader = reader

    def read_hashes(self, subtrees: Sequence[Subtree]) -> list[bytes]:
        """The hash of each complete subtree, from authenticated tiles.

        Raises:
            VerificationError: ``tile_invalid``: a tile has the wrong length or
                does not match the root; ValueError: a subtree is not complete in this tree.
        """
        holders = [tile_for_subtree(subtree, self.size) for subtree in subtrees]
        data = self.authenticated_tiles(holders)
        return [
            hash_from_tile(tile, data[i], subtree)
            for i, (tile, subtree) in enumerate(zip(holders, subtrees, strict=True))
        ]

    def authenticated_tiles(self, wanted: Sequence[Tile]) -> list[bytes]:
        """The bytes of each tile in ``wanted`` (tiles of this tree), checked against the root.

        Raises:
            VerificationError: ``tile_invalid``.
            ValueError: a tile is not one of this tree's tiles.
        """
        edge = right_edge(self.size)
        order: dict[tuple[int, int], int] = {tile.key: i for i, tile in enumerate(edge)}
        plan: list[Tile] = list(edge)
        for tile in wanted:
            if tile_in_tree(tile.level, tile.index, self.size) != tile:
                raise ValueError(f"{tile.path} is not a tile of a tree of {self.size}")
            chain = []
            current: Tile | None = tile
            while current is not None and current.key not in order:
                chain.append(current)
                current = tile_in_tree(current.level + 1, current.index // TILE_WIDTH, self.size)
            for parent_first in reversed(chain):
                order[parent_first.key] = len(plan)
                plan.append(parent_first)
        data = [bytes(d) for d in self._reader.read_tiles(plan)]
        if len(data) != len(plan):
            raise VerificationError(
                Reason.TILE_INVALID, f"asked for {len(plan)} tiles, the tile reader returned {len(data)}"
            )
        for tile, content in zip(plan, data, strict=True):
            check_tile_data(tile, content)
        if edge_root(list(zip(edge, data[: len(edge)], strict=True))) != self.root:
            raise VerificationError(
                Reason.TILE_INVALID, "the right-edge tiles do not match the checkpoint's root hash"
            )
        for i in range(len(edge), len(plan)):
            tile = plan[i]
            parent = tile_in_tree(tile.level + 1, tile.index // TILE_WIDTH, self.size)
            assert parent is not None
            assert tile.full
            expected = hash_from_tile(
                parent, data[order[parent.key]], Subtree(TILE_HEIGHT * parent.level, tile.index)
            )
            if tile_root(data[i]) != expected:
                raise VerificationError(
                    Reason.TILE_INVALID, f"{tile.path} does not match its parent tile (altered or reordered)"
                )
        return [data[order[tile.key]] for tile in wanted]

    def entries(self, bundle: EntryBundle, data: bytes) -> list[bytes]:
        """The entries of an entry bundle from outside, each checked against the authenticated level-0 tile.

        Raises:
            VerificationError: ``tile_invalid``: malformed, the wrong width, or an entry that is not the leaf.
            ValueError: the bundle is not one of this tree's.
        """
        level0 = tile_in_tree(0, bundle.index, self.size)
        if level0 is None or level0.width != bundle.width:
            raise ValueError(f"{bundle.path} is not an entry bundle of a tree of {self.size}")
        entries = decode_bundle(bundle, data)
        hashes = split_hashes(self.authenticated_tiles([level0])[0])
        for position, (entry, expected) in enumerate(zip(entries, hashes, strict=True)):
            if leaf_hash(entry) != expected:
                raise VerificationError(
                    Reason.TILE_INVALID,
                    f"{bundle.path}: entry {bundle.start + position} does not match its leaf hash",
                )
        return entries
