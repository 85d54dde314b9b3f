"""C2SP ``tlog-tiles``: tile coordinates and paths, hash tiles, entry bundles.

A *hash tile* at level ``L`` and index ``N`` holds up to 256 consecutive
Merkle tree hashes at tree level ``8 * L``; a full tile is exactly 256 hashes
(8,192 bytes), the right-edge tiles of a tree are *partial* (1 to 255
hashes). An *entry bundle* holds the entries whose leaf hashes fill the level-0
tile of the same index, each as a big-endian ``uint16`` length and the bytes.

Paths are ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``, with
``<N>`` written in 3-digit path elements, all but the last prefixed ``x``
(``1234067`` is ``x001/x234/067``). :func:`parse_path` accepts only the one
canonical spelling.

Everything read from outside is checked here: a tile must be exactly
``width * 32`` bytes, a bundle must hold exactly ``width`` well-formed
entries and nothing after them. Whether a tile's *content* is right is
decided against a checkpoint's root by :mod:`clearance.transparency.tilereader`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.transparency.merkle import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, Subtree, fold, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile, entries in a full bundle."""
MAX_TILE_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF
"""An entry bundle prefixes each entry with a big-endian uint16 length."""
MAX_BUNDLE_SIZE = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)

_INDEX_ELEMENT = re.compile(r"x\d{3}")
_LAST_ELEMENT = re.compile(r"\d{3}")
_DECIMAL = re.compile(r"0|[1-9]\d*")


@dataclass(frozen=True, order=True)
class Tile:
    """A hash tile: ``width`` hashes at tree level ``8 * level``, starting with hash ``index * 256``."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_TILE_LEVEL or self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"no such tile: level {self.level}, index {self.index}, width {self.width}")

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        return f"tile/{self.level}/{_encode_index(self.index, self.width)}"

    @property
    def key(self) -> tuple[int, int]:
        """``(level, index)``: the same for every width of this tile."""
        return self.level, self.index


@dataclass(frozen=True, order=True)
class EntryBundle:
    """The entries of leaves ``index * 256`` to ``index * 256 + width - 1``."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if self.index < 0 or not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"no such entry bundle: index {self.index}, width {self.width}")

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        return f"tile/entries/{_encode_index(self.index, self.width)}"

    @property
    def start(self) -> int:
        return self.index * TILE_WIDTH


def _encode_index(index: int, width: int) -> str:
    elements = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        elements.append(f"x{index % 1000:03d}")
        index //= 1000
    path = "/".join(reversed(elements))
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def parse_path(path: str) -> Tile | EntryBundle:
    """The tile or entry bundle a ``tile/...`` path names; only the canonical spelling is accepted.

    Raises:
        MalformedError: not a canonical tile or entry bundle path.
    """
    if len(path) > 128:
        raise MalformedError("tile path is too long")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise MalformedError("not a tile path")
    width = TILE_WIDTH
    if len(parts) >= 4 and parts[-2].endswith(".p"):
        if not _DECIMAL.fullmatch(parts[-1]) or not 1 <= int(parts[-1]) < TILE_WIDTH:
            raise MalformedError("partial tile width must be 1 to 255")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][: -len(".p")]]
    elements = parts[2:]
    if not _LAST_ELEMENT.fullmatch(elements[-1]) or not all(
        _INDEX_ELEMENT.fullmatch(e) for e in elements[:-1]
    ):
        raise MalformedError("tile index must be 3-digit path elements, all but the last starting with x")
    index = 0
    for element in elements:
        index = index * 1000 + int(element.lstrip("x"))
    try:
        parsed: Tile | EntryBundle
        if parts[1] == "entries":
            parsed = EntryBundle(index, width)
        elif _DECIMAL.fullmatch(parts[1]):
            parsed = Tile(int(parts[1]), index, width)
        else:
            raise MalformedError("tile level must be a decimal number or 'entries'")
    except ValueError as exc:
        raise MalformedError(str(exc)) from exc
    if parsed.path != path:
        raise MalformedError("tile path is not in canonical form (leading zeros or an extra x element)")
    return parsed


# -- tree geometry ---------------------------------------------------------------


def _level_size(level: int, size: int) -> int:
    """Hashes at tree level ``8 * level`` in a tree of ``size`` leaves (complete subtrees only)."""
    return size >> (TILE_HEIGHT * level)


def tile_in_tree(level: int, index: int, size: int) -> Tile | None:
    """Tile ``(level, index)`` as a tree of ``size`` leaves has it (partial at the right edge), or None."""
    available = _level_size(level, size) - index * TILE_WIDTH
    if level > MAX_TILE_LEVEL or available <= 0:
        return None
    return Tile(level, index, min(TILE_WIDTH, available))


def bundle_in_tree(index: int, size: int) -> EntryBundle | None:
    """Entry bundle ``index`` as a tree of ``size`` leaves has it, or None."""
    available = size - index * TILE_WIDTH
    return EntryBundle(index, min(TILE_WIDTH, available)) if available > 0 else None


def right_edge(size: int) -> list[Tile]:
    """The partial tiles of a tree of ``size`` leaves, lowest level first.

    They are exactly what the root hash is computed from: the tree's
    decomposition into complete subtrees takes, at each tile level, the
    subtrees spanned by that level's partial tile.
    """
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {size} out of range")
    edge = []
    level = 0
    while _level_size(level, size):
        width = _level_size(level, size) % TILE_WIDTH
        if width:
            edge.append(Tile(level, _level_size(level, size) // TILE_WIDTH, width))
        level += 1
    return edge


def tile_for_subtree(subtree: Subtree, size: int) -> Tile:
    """The tile (as the tree of ``size`` leaves has it) that holds or spans ``subtree``.

    Raises:
        ValueError: the subtree is not complete in that tree.
    """
    if subtree.end > size:
        raise ValueError(f"subtree {subtree} is not complete in a tree of {size}")
    level, shift = divmod(subtree.level, TILE_HEIGHT)
    first = subtree.index << shift
    tile = tile_in_tree(level, first // TILE_WIDTH, size)
    assert tile is not None
    return tile


def hash_from_tile(tile: Tile, data: bytes, subtree: Subtree) -> bytes:
    """The hash of ``subtree``, read from (or folded up from the hashes of) ``tile``'s ``data``.

    Raises:
        ValueError: the tile does not hold that subtree.
    """
    level, shift = divmod(subtree.level, TILE_HEIGHT)
    first = (subtree.index << shift) - tile.index * TILE_WIDTH
    count = 1 << shift
    if level != tile.level or first < 0 or first + count > tile.width:
        raise ValueError(f"{tile.path} does not hold subtree {subtree}")
    hashes = split_hashes(data[first * HASH_SIZE : (first + count) * HASH_SIZE])
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def split_hashes(data: bytes) -> list[bytes]:
    """A tile's bytes as its list of 32-byte hashes."""
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def tile_root(data: bytes) -> bytes:
    """The hash of a full tile: the root of the 256-leaf subtree its hashes are the bottom of."""
    hashes = split_hashes(data)
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def edge_root(edge: Sequence[tuple[Tile, bytes]]) -> bytes:
    """The root hash of a tree from its right-edge partial tiles (see :func:`right_edge`)."""
    subtrees: list[bytes] = []
    for tile, data in sorted(edge, key=lambda item: -item[0].level):
        offset = 0
        for bit in reversed(range(TILE_HEIGHT)):
            count = 1 << bit
            if tile.width & count:
                group = split_hashes(data[offset * HASH_SIZE : (offset + count) * HASH_SIZE])
                while len(group) > 1:
                    group = [node_hash(group[i], group[i + 1]) for i in range(0, len(group), 2)]
                subtrees.append(group[0])
                offset += count
    return fold(subtrees) if subtrees else EMPTY_ROOT


# -- checking what comes from outside --------------------------------------------


def check_tile_data(tile: Tile, data: bytes) -> None:
    """Refuse tile data of the wrong length for ``tile``'s width.

    Raises:
        VerificationError: ``tile_invalid`` (truncated, oversized or not a whole number of hashes).
    """
    if not isinstance(data, bytes | bytearray):
        raise VerificationError(Reason.TILE_INVALID, f"{tile.path}: not bytes")
    expected = tile.width * HASH_SIZE
    if len(data) < expected:
        raise VerificationError(
            Reason.TILE_INVALID, f"{tile.path}: truncated ({len(data)} bytes, want {expected})"
        )
    if len(data) > expected:
        raise VerificationError(
            Reason.TILE_INVALID, f"{tile.path}: oversized ({len(data)} bytes, want {expected})"
        )


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Entries as an entry bundle: each a big-endian uint16 length and its bytes.

    Raises:
        ValueError: more than 256 entries, or an entry longer than 65,535 bytes.
    """
    if len(entries) > TILE_WIDTH:
        raise ValueError("an entry bundle holds at most 256 entries")
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError("an entry is longer than 65,535 bytes")
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def iter_bundle(data: bytes) -> Iterator[bytes]:
    """The entries of an entry bundle, in order.

    Raises:
        VerificationError: ``tile_invalid``: a length runs past the end.
    """
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise VerificationError(Reason.TILE_INVALID, "entry bundle ends inside a length prefix")
        length = int.from_bytes(data[offset : offset + 2], "big")
        if offset + 2 + length > len(data):
            raise VerificationError(Reason.TILE_INVALID, "entry bundle ends inside an entry (truncated)")
        yield bytes(data[offset + 2 : offset + 2 + length])
        offset += 2 + length


def decode_bundle(bundle: EntryBundle, data: bytes) -> list[bytes]:
    """The ``bundle.width`` entries of an entry bundle from outside.

    Raises:
        VerificationError: ``tile_invalid``: too large, truncated, or holding
            more or fewer entries than the bundle's width.
    """
    if len(data) > MAX_BUNDLE_SIZE:
        raise VerificationError(Reason.TILE_INVALID, f"{bundle.path}: oversized")
    entries = []
    for entry in iter_bundle(data):
        entries.append(entry)
        if len(entries) > bundle.width:
            raise VerificationError(
                Reason.TILE_INVALID, f"{bundle.path}: more than {bundle.width} entries (oversized)"
            )
    if len(entries) != bundle.width:
        raise VerificationError(
            Reason.TILE_INVALID, f"{bundle.path}: {len(entries)} entries, want {bundle.width} (truncated)"
        )
    return entries
