"""RFC 6962 / RFC 9162 Merkle trees: hashing, roots, inclusion and consistency proofs.

Leaves hash as ``SHA-256(0x00 || entry)``, interior nodes as
``SHA-256(0x01 || left || right)``, and the root of ``n`` leaves splits at
the largest power of two below ``n`` (RFC 9162 section 2.1.1).

Proofs are *generated* from stored hashes: the hash of every complete,
aligned subtree (a :class:`Subtree`: ``2**level`` leaves starting at
``index * 2**level``) is what a log keeps (as tiles, see
:mod:`clearance.transparency.tiles`). A proof is a handful of such subtrees,
plus at most one incomplete right-edge subtree that is folded from
``O(log n)`` of them, so generating a proof reads ``O(log n)`` hashes, in one
batch, through a :class:`HashReader`.

Proofs are *verified* with the algorithms of RFC 9162 sections 2.1.3.2 and
2.1.4.2; a failure raises :class:`~clearance.errors.VerificationError` with
``inclusion_proof_invalid``, ``consistency_proof_invalid`` or ``log_shrank``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clearance.errors import Reason, VerificationError

HASH_SIZE = 32
MAX_TREE_SIZE = 2**63 - 1
"""Checkpoint sizes are at most this (a signed 64-bit integer everywhere)."""
MAX_PROOF_HASHES = 64
"""No proof for a tree of at most ``2**63 - 1`` leaves needs more hashes than this."""
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root hash of the empty tree (RFC 9162 section 2.1.1)."""


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, order=True, slots=True)
class Subtree:
    """A complete subtree: ``2**level`` leaves starting at leaf ``index * 2**level``."""

    level: int
    index: int

    @property
    def start(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


class HashReader(Protocol):
    """Reads the stored hashes of complete subtrees."""

    def read_hashes(self, subtrees: Sequence[Subtree]) -> list[bytes]:
        """The hash of each subtree, in order.

        Raises:
            VerificationError: the hashes come from outside and do not check out.
            StorageError: the store could not be read.
        """
        ...


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a sequence of leaf hashes (recursive, for small inputs)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    split = _largest_power_of_two_below(len(hashes))
    return node_hash(root_of_leaf_hashes(hashes[:split]), root_of_leaf_hashes(hashes[split:]))


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def decompose(start: int, end: int) -> list[Subtree]:
    """The complete subtrees whose right fold is the hash of leaves ``[start, end)``.

    ``start`` must be aligned as RFC 9162's recursion leaves it (a multiple of
    the smallest power of two at least ``end - start``); every range a proof
    names is.
    """
    subtrees: list[Subtree] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        subtrees.append(Subtree(level, start >> level))
        start += 1 << level
    return subtrees


def fold(hashes: Sequence[bytes]) -> bytes:
    """The right fold ``h0 . (h1 . (h2 ...))`` of the hashes :func:`decompose` named."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _check_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {size} out of range")


def _inclusion_ranges(index: int, start: int, end: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[start:end]), bottom first."""
    ranges: list[tuple[int, int]] = []
    while end - start > 1:
        split = _largest_power_of_two_below(end - start)
        if index < start + split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start += split
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, start: int, end: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(old, D[start:end]) (RFC 9162 2.1.4.1)."""
    ranges: list[tuple[int, int]] = []
    complete = True
    while True:
        size = end - start
        if old == size:
            if not complete:
                ranges.append((start, end))
            break
        split = _largest_power_of_two_below(size)
        if old <= split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start += split
            old -= split
            complete = False
    ranges.reverse()
    return ranges


def _hashes_of_ranges(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """One hash per leaf range, read in a single batch."""
    plans = [decompose(start, end) for start, end in ranges]
    wanted = sorted({subtree for plan in plans for subtree in plan})
    hashes = reader.read_hashes(wanted)
    if len(hashes) != len(wanted) or any(len(h) != HASH_SIZE for h in hashes):
        raise VerificationError(Reason.TILE_INVALID, "the hash reader returned the wrong number of hashes")
    known = dict(zip(wanted, hashes, strict=True))
    return [fold([known[subtree] for subtree in plan]) for plan in plans]


def tree_root(size: int, reader: HashReader) -> bytes:
    """The root hash of the first ``size`` leaves.

    Raises:
        ValueError: ``size`` is out of range.
    """
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _hashes_of_ranges([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1).

    Raises:
        ValueError: ``index`` is not a leaf of that tree.
    """
    _check_size(size)
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    return _hashes_of_ranges(_inclusion_ranges(index, 0, size), reader)


def consistency_proof(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``.

    Empty when ``old_size`` is 0 or equals ``new_size`` (RFC 9162 2.1.4.1, c2sp.org/tlog-witness).

    Raises:
        ValueError: ``old_size`` exceeds ``new_size``.
    """
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    return _hashes_of_ranges(_consistency_ranges(old_size, 0, new_size), reader)


def _check_hash(value: bytes, what: str, reason: Reason) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(reason, f"{what} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(entry_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 section 2.1.3.2, steps 1 to 3).

    Raises:
        VerificationError: ``inclusion_proof_invalid``: the index is outside the
            tree, or the proof has the wrong length.
    """
    reason = Reason.INCLUSION_PROOF_INVALID
    _check_hash(entry_hash, "the leaf hash", reason)
    if not 0 <= index < size <= MAX_TREE_SIZE:
        raise VerificationError(reason, f"leaf {index} is not in a tree of {size}")
    if len(proof) > MAX_PROOF_HASHES:
        raise VerificationError(reason, "the proof is too long")
    fn, sn, result = index, size - 1, entry_hash
    for sibling in proof:
        _check_hash(sibling, "a proof element", reason)
        if sn == 0:
            raise VerificationError(reason, "the proof is too long for this tree")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(reason, "the proof is too short for this tree")
    return result


def verify_inclusion(entry_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that the leaf with ``entry_hash`` is at ``index`` in the tree with ``root`` of ``size`` leaves.

    Raises:
        VerificationError: ``inclusion_proof_invalid``.
    """
    _check_hash(root, "the root hash", Reason.INCLUSION_PROOF_INVALID)
    computed = root_from_inclusion_proof(entry_hash, index, size, proof)
    if not hmac.compare_digest(computed, root):
        raise VerificationError(Reason.INCLUSION_PROOF_INVALID, "the proof does not lead to the root hash")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``old_root`` of ``old_size`` leaves is a prefix of ``new_root`` (RFC 9162 2.1.4.2).

    Equal sizes need equal roots and an empty proof; from the empty tree the
    proof must be empty and any new root is consistent.

    Raises:
        VerificationError: ``log_shrank`` when ``new_size < old_size``;
            ``consistency_proof_invalid`` otherwise.
    """
    reason = Reason.CONSISTENCY_PROOF_INVALID
    _check_hash(old_root, "the old root hash", reason)
    _check_hash(new_root, "the new root hash", reason)
    if not 0 <= old_size <= MAX_TREE_SIZE or not 0 <= new_size <= MAX_TREE_SIZE:
        raise VerificationError(reason, "tree size out of range")
    if new_size < old_size:
        raise VerificationError(Reason.LOG_SHRANK, f"the log went from {old_size} to {new_size} entries")
    if len(proof) > MAX_PROOF_HASHES:
        raise VerificationError(reason, "the proof is too long")
    for element in proof:
        _check_hash(element, "a proof element", reason)
    if old_size == new_size or old_size == 0:
        if proof:
            raise VerificationError(reason, "the proof must be empty")
        if old_size == new_size and not hmac.compare_digest(old_root, new_root):
            raise VerificationError(Reason.SPLIT_VIEW, f"two different roots for {old_size} entries")
        if old_size == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise VerificationError(reason, "the empty tree has another root hash")
        return
    if not proof:
        raise VerificationError(reason, "the proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = path[0]
    for element in path[1:]:
        if sn == 0:
            raise VerificationError(reason, "the proof is too long")
        if fn & 1 or fn == sn:
            first = node_hash(element, first)
            second = node_hash(element, second)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second = node_hash(second, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(reason, "the proof is too short")
    if not hmac.compare_digest(first, old_root) or not hmac.compare_digest(second, new_root):
        raise VerificationError(reason, "the proof does not connect the two roots")
