"""RFC 9162 proofs: generated from stored hashes, verified, and refused when wrong."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearance.errors import Reason, VerificationError
from clearance.transparency.merkle import (
    EMPTY_ROOT,
    Subtree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of_leaf_hashes,
    tree_root,
    verify_consistency,
    verify_inclusion,
)


class CountingReader:
    """A HashReader over leaf hashes in memory that counts what it is asked for."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.reads = 0

    def read_hashes(self, subtrees: Sequence[Subtree]) -> list[bytes]:
        self.reads += len(subtrees)
        return [root_of_leaf_hashes(self.leaves[s.start : s.end]) for s in subtrees]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def audit_path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(m, D[n]), written as the RFC writes it."""
    if len(hashes) <= 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if index < k:
        return [*audit_path(index, hashes[:k]), root_of_leaf_hashes(hashes[k:])]
    return [*audit_path(index - k, hashes[k:]), root_of_leaf_hashes(hashes[:k])]


def subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(hashes)
    if m == n:
        return [] if complete else [root_of_leaf_hashes(hashes)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, hashes[:k], complete), root_of_leaf_hashes(hashes[k:])]
    return [*subproof(m - k, hashes[k:], False), root_of_leaf_hashes(hashes[:k])]


def test_the_empty_tree_and_a_known_vector() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert tree_root(0, CountingReader([])) == EMPTY_ROOT
    # RFC 6962 test vector: a one-leaf tree of the empty entry.
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert (
        node_hash(b"\x00" * 32, b"\x01" * 32)
        == hashlib.sha256(b"\x01" + b"\x00" * 32 + b"\x01" * 32).digest()
    )


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=700), st.data())
def test_proofs_match_the_rfc_and_verify(size: int, data: st.DataObject) -> None:
    hashes = leaves(size)
    reader = CountingReader(hashes)
    root = root_of_leaf_hashes(hashes)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))

    assert tree_root(size, reader) == root
    path = inclusion_proof(index, size, reader)
    assert path == audit_path(index, hashes)
    verify_inclusion(hashes[index], index, size, path, root)
    proof = consistency_proof(old, size, reader)
    assert proof == ([] if old in (0, size) else subproof(old, hashes, True))
    verify_consistency(old, size, root_of_leaf_hashes(hashes[:old]), root, proof)


def test_a_proof_reads_a_logarithmic_number_of_hashes() -> None:
    reader = CountingReader(leaves(5000))
    inclusion_proof(4321, 4999, reader)
    assert reader.reads <= 2 * (4999).bit_length()
    reader.reads = 0
    consistency_proof(1234, 4999, reader)
    assert reader.reads <= 2 * (4999).bit_length()


@pytest.fixture
def tree() -> tuple[list[bytes], bytes]:
    hashes = leaves(1000)
    return hashes, root_of_leaf_hashes(hashes)


def refused(reason: Reason, call: object, *args: object) -> None:
    assert callable(call)
    with pytest.raises(VerificationError) as error:
        call(*args)
    assert error.value.reason is reason


def test_inclusion_refusals(tree: tuple[list[bytes], bytes]) -> None:
    hashes, root = tree
    path = inclusion_proof(300, 1000, CountingReader(hashes))
    invalid = Reason.INCLUSION_PROOF_INVALID
    refused(invalid, verify_inclusion, hashes[301], 300, 1000, path, root)  # wrong leaf
    refused(invalid, verify_inclusion, hashes[300], 301, 1000, path, root)  # wrong index
    # A proof made for another tree size does not lead to this checkpoint's root.
    for other_size in (301, 512, 999):
        other = inclusion_proof(300, other_size, CountingReader(hashes[:other_size]))
        refused(invalid, verify_inclusion, hashes[300], 300, 1000, other, root)
    refused(invalid, verify_inclusion, hashes[300], 300, 300, path, root)  # a size the path cannot fit
    refused(invalid, verify_inclusion, hashes[300], 300, 1000, path[:-1], root)  # truncated
    refused(invalid, verify_inclusion, hashes[300], 300, 1000, [*path, path[0]], root)  # extended
    refused(invalid, verify_inclusion, hashes[300], 300, 1000, path[::-1], root)  # reordered
    refused(invalid, verify_inclusion, hashes[300], 300, 1000, path, hashes[0])  # another root
    refused(invalid, verify_inclusion, hashes[300], 1000, 1000, path, root)  # index outside
    refused(invalid, verify_inclusion, hashes[300], -1, 1000, path, root)
    refused(invalid, verify_inclusion, hashes[300], 300, 1000, [path[0][:31], *path[1:]], root)
    refused(invalid, verify_inclusion, hashes[300], 300, 1000, [path[0]] * 65, root)
    refused(invalid, verify_inclusion, hashes[300][:16], 300, 1000, path, root)


def test_consistency_refusals(tree: tuple[list[bytes], bytes]) -> None:
    hashes, root = tree
    reader = CountingReader(hashes)
    old_root = root_of_leaf_hashes(hashes[:600])
    proof = consistency_proof(600, 1000, reader)
    invalid = Reason.CONSISTENCY_PROOF_INVALID
    refused(Reason.LOG_SHRANK, verify_consistency, 1000, 600, root, old_root, proof)
    refused(invalid, verify_consistency, 600, 1000, hashes[0], root, proof)  # a forked history
    refused(invalid, verify_consistency, 601, 1000, old_root, root, proof)  # wrong old size
    shorter = consistency_proof(600, 999, CountingReader(hashes[:999]))  # made for another new size
    refused(invalid, verify_consistency, 600, 1000, old_root, root, shorter)
    refused(invalid, verify_consistency, 600, 1000, old_root, root, proof[:-1])
    refused(invalid, verify_consistency, 600, 1000, old_root, root, [*proof, proof[0]])
    refused(invalid, verify_consistency, 600, 1000, old_root, root, [])
    refused(Reason.SPLIT_VIEW, verify_consistency, 1000, 1000, root, old_root, [])
    refused(invalid, verify_consistency, 1000, 1000, root, root, proof)  # same size needs no proof
    refused(invalid, verify_consistency, 0, 1000, EMPTY_ROOT, root, proof)
    refused(invalid, verify_consistency, 0, 1000, root, root, [])  # not the empty tree's root
    verify_consistency(0, 1000, EMPTY_ROOT, root, [])
    verify_consistency(1000, 1000, root, root, [])


def test_generation_refuses_impossible_requests() -> None:
    reader = CountingReader(leaves(10))
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(10, 10, reader)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(11, 10, reader)
    with pytest.raises(ValueError, match="out of range"):
        tree_root(2**63, reader)
