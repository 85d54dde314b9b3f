"""Group commit: a batch the database aborts as a deadlock is run again job by job, not failed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from clearance.errors import ClearanceError, StorageError
from registry.store.batching import WriteBatcher, Written
from registry.store.db import Database

pytestmark = pytest.mark.database


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url)
    yield database
    database.dispose()


class AbortingOnce:
    """A group writer whose first batch the database aborts with ``sqlstate``."""

    def __init__(self, sqlstate: str) -> None:
        self.sqlstate = sqlstate
        self.calls: list[list[str]] = []

    def write_group(self, session: Session, payloads: Sequence[str]) -> list[Written[str] | ClearanceError]:
        self.calls.append(list(payloads))
        if len(self.calls) == 1:
            raise OperationalError("INSERT ...", {}, _DriverError(self.sqlstate))
        return [Written(payload) for payload in payloads]


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlocked_batch_is_run_again_job_by_job(db: Database, sqlstate: str) -> None:
    batcher = WriteBatcher(db)
    writer = AbortingOnce(sqlstate)

    assert batcher.submit(writer, "issued") == "issued"
    assert writer.calls == [["issued"], ["issued"]]


def test_an_error_that_is_not_transient_fails_the_batch(db: Database) -> None:
    batcher = WriteBatcher(db)
    writer = AbortingOnce("08006")

    with pytest.raises(StorageError, match="database unavailable or busy"):
        batcher.submit(writer, "issued")
    assert writer.calls == [["issued"]]
