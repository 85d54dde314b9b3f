"""Group commit: a batch the database aborts as a deadlock is run again job by job, not failed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from clearance.errors import StorageError
from registry.store.batching import WriteBatcher
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


def _aborting_once(sqlstate: str, result: str, calls: list[str]) -> Any:
    def apply(session: Session) -> tuple[str, list[Any]]:
        calls.append(result)
        if len(calls) == 1:
            raise OperationalError("INSERT ...", {}, _DriverError(sqlstate))
        return result, []

    return apply


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlocked_batch_is_run_again_job_by_job(db: Database, sqlstate: str) -> None:
    batcher = WriteBatcher(db)
    calls: list[str] = []

    assert batcher.submit(_aborting_once(sqlstate, "issued", calls)) == "issued"
    assert calls == ["issued", "issued"]


def test_an_error_that_is_not_transient_fails_the_batch(db: Database) -> None:
    batcher = WriteBatcher(db)
    calls: list[str] = []

    with pytest.raises(StorageError, match="database unavailable or busy"):
        batcher.submit(_aborting_once("08006", "issued", calls))
    assert calls == ["issued"]
