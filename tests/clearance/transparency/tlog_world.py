"""A tiled log in memory for tests: tiles kept as rows, appended through the real writer."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clearance.transparency.merkle import leaf_hash
from clearance.transparency.tile_reader import TileHashReader
from clearance.transparency.tile_writer import TileEdge, append_entries
from clearance.transparency.tiles import EntryBundle, Tile, bundle_in_tree, tile_in_tree


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class MemoryLog:
    """Tiles and bundles as rows keyed by ``(level, index)`` / index, each row its widest version."""

    edge: TileEdge = field(default_factory=lambda: TileEdge(0))
    tiles: dict[tuple[int, int], bytes] = field(default_factory=dict)
    bundles: dict[int, bytes] = field(default_factory=dict)
    entries: list[bytes] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    reads: int = 0

    def append(self, entries: Sequence[bytes]) -> bytes:
        result = append_entries(self.edge, entries)
        for tile, data in result.tiles:
            self.tiles[tile.key] = data
        for bundle, data in result.bundles:
            self.bundles[bundle.index] = data
        self.edge = result.edge
        self.entries.extend(entries)
        self.roots[result.size] = result.root
        return result.root

    @property
    def size(self) -> int:
        return self.edge.size

    @property
    def root(self) -> bytes:
        return self.edge.root

    def leaf_hashes(self) -> list[bytes]:
        return [leaf_hash(e) for e in self.entries]

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        """The TileReader protocol: a partial tile is a prefix of its row."""
        self.reads += len(tiles)
        return [self.tiles[tile.key][: tile.width * 32] for tile in tiles]

    def hash_reader(self, size: int | None = None) -> TileHashReader:
        size = self.size if size is None else size
        return TileHashReader(size, self.roots.get(size, self.root), self)

    def write_dir(self, directory: Path, size: int | None = None) -> None:
        """The C2SP tile tree of the log at ``size`` as files (what a static export serves)."""
        size = self.size if size is None else size
        for level, index in self.tiles:
            tile = tile_in_tree(level, index, size)
            if tile is not None:
                self._write(directory, tile.path, self.tiles[level, index][: tile.width * 32])
        for index, data in self.bundles.items():
            bundle = bundle_in_tree(index, size)
            if bundle is not None:
                self._write(directory, bundle.path, _bundle_prefix(data, bundle))

    @staticmethod
    def _write(directory: Path, path: str, data: bytes) -> None:
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _bundle_prefix(data: bytes, bundle: EntryBundle) -> bytes:
    offset = 0
    for _ in range(bundle.width):
        offset += 2 + int.from_bytes(data[offset : offset + 2], "big")
    return data[:offset]
