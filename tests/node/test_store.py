"""The node store keeps the signed documents it accepted and rebuilds the same trust from them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from clearance.errors import StorageError
from clearance.trust import TrustStore
from node.store import NodeStore
from node.sync import UpdateApplier
from tests.factories import NOW
from tests.node.conftest import OfflineNode as Node


def test_a_rebuilt_store_trusts_exactly_what_was_accepted(node: Node) -> None:
    for seq, index in ((1, 10), (2, 11), (3, 12)):
        assert node.syncer.receive("status_delta", node.delta(seq, [(index, 1)], at=NOW + seq))

    rebuilt = node.rebuilt()

    assert rebuilt.home is not None
    assert node.trust.home is not None
    assert rebuilt.home.version == node.trust.home.version
    held = rebuilt.status_lists[node.world.status_uri]
    assert held.seq == 4
    assert held.issued_at == NOW + 3
    assert [held.status_of(i) for i in (10, 11, 12, 13)] == [1, 1, 1, 0]


def test_what_a_document_supersedes_is_dropped(node: Node) -> None:
    node.syncer.receive("status_delta", node.delta(1, [(10, 1)]))
    node.world.version = 2
    node.world.seq = 5
    node.syncer.receive("trust_bundle", node.world.bundle())
    node.syncer.receive("status_list", node.world.status_token(issued_at=NOW + 1))

    kinds = [d.kind for d in node.store.documents()]

    assert sorted(kinds) == ["status_list", "trust_bundle"]
    assert node.trust.status_lists[node.world.status_uri].seq == 5


def test_a_list_the_new_bundle_drops_is_dropped_from_the_store(node: Node) -> None:
    node.world.version = 2
    node.syncer.receive("trust_bundle", node.world.bundle(status_lists=()))

    assert node.trust.status_lists == {}
    assert [d.kind for d in node.store.documents()] == ["trust_bundle"]


class RefusingStore(NodeStore):
    """A store whose disk refuses writes of documents."""

    def record(self, kind: str, subject: str, token: str, accepted_at: int, trust: TrustStore) -> None:
        raise StorageError("disk full")


def test_an_update_that_cannot_be_written_is_not_applied(node: Node) -> None:
    refusing = RefusingStore(node.path)
    applier = UpdateApplier(node.state, refusing, lambda: NOW)
    before = node.trust

    with pytest.raises(StorageError):
        applier.apply("status_delta", node.delta(1, [(10, 1)]))

    assert node.trust is before
    assert node.trust.status_lists[node.world.status_uri].status_of(10) == 0
    refusing.close()


def test_a_damaged_document_is_dropped_with_what_builds_on_it(node: Node) -> None:
    for seq in (1, 2, 3):
        node.syncer.receive("status_delta", node.delta(seq, [(20 + seq, 1)], at=NOW + seq))
    db = sqlite3.connect(node.path)
    with db:
        (second,) = db.execute(
            "SELECT id FROM documents WHERE kind = 'status_delta' ORDER BY id LIMIT 1 OFFSET 1"
        )
        db.execute("UPDATE documents SET token = token || 'x' WHERE id = ?", second)
    db.close()

    store = NodeStore(node.path)
    rebuilt = store.rebuild(node.world.root.public)

    held = rebuilt.status_lists[node.world.status_uri]
    assert held.seq == 2  # the first delta stands; the damaged one and the one after it are gone
    assert [held.status_of(i) for i in (21, 22, 23)] == [1, 0, 0]
    assert len(store.documents("status_delta")) == 1
    assert store.problems()[0].reason == "replay_failed"
    store.close()


def test_a_store_without_a_pinned_root_is_refused(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "empty.sqlite3")
    with pytest.raises(StorageError, match="pins no root"):
        store.pinned_root()
    store.close()


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        NodeStore(path)
