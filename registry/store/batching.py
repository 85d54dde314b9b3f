"""Group commit: many concurrent writes, one transaction.

Under load, issuing one credential per transaction spends most of its time
in BEGIN/COMMIT and in waiting for the audit chain's head lock. Request
threads therefore do their expensive work (checks, signing) first, then hand
a small *write job* to the :class:`WriteBatcher`. Its single writer thread
takes every job waiting and runs them in one transaction: a job refused by
its checks (an assessment withdrawn meanwhile) simply drops out, a write
conflict (a status index taken meanwhile) makes the batch run again job by
job so only that job fails; then their audit events are appended under one
lock of the chain's head, and the batch commits once. Each caller gets its
own result or exception.

Nothing is acknowledged before its commit: a failed commit fails every job
of the batch, and none of them left anything behind.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from clearance.errors import ClearanceError, StorageError, WriteConflictError
from registry.store import audit
from registry.store.db import Database

MAX_BATCH = 256

AuditEvent = tuple[int, str, str, str, str, Mapping[str, Any] | None]


class GroupWriter(Protocol):
    """Writes many jobs of one kind at once (one query for all, one insert for all)."""

    def write_group(
        self, session: Session, payloads: list[Any]
    ) -> list[tuple[Any, list[AuditEvent]] | ClearanceError]:
        """One outcome per payload, in order: (result, audit events), or the error refusing it.

        A refused payload must not have written anything.
        """
        ...


@dataclass
class WriteJob:
    """Either ``apply`` (runs alone inside the batch transaction and returns (result, audit
    events)) or a ``payload`` for a :class:`GroupWriter` that handles its kind together."""

    apply: Callable[[Session], tuple[Any, list[AuditEvent]]] | None = None
    group: GroupWriter | None = None
    payload: Any = None
    future: Future[Any] = field(default_factory=Future)


class WriteBatcher:
    """Group commit by leader election: whoever finds no batch running commits everyone's jobs.

    A caller queues its job, then tries to become the leader. The leader takes
    every queued job, commits them together, and repeats while jobs keep
    arriving; the others wait for their result, and retry leadership now and
    then so a job queued just as a leader stepped down is never stranded.
    With one caller at a time this is a plain transaction with no thread
    hand-off; under load, batches grow by themselves.
    """

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[WriteJob] = queue.SimpleQueue()
        self._leader = threading.Lock()

    def submit(
        self,
        apply: Callable[[Session], tuple[Any, list[AuditEvent]]] | None = None,
        *,
        group: GroupWriter | None = None,
        payload: Any = None,
        timeout: float = 60.0,
    ) -> Any:
        """Run ``apply`` (or ``payload`` through ``group``) in a batch; return its result or raise its error."""
        job = WriteJob(apply, group, payload)
        self._queue.put(job)
        # Lead while there is work and nobody else leads. A leader looks at the
        # queue again after stepping down, so a job queued while it was
        # finishing (whose owner failed to take the lead) is never stranded.
        while not self._queue.empty() and self._leader.acquire(blocking=False):
            try:
                self._drain()
            finally:
                self._leader.release()
        try:
            return job.future.result(timeout=timeout)
        except FutureTimeout:
            raise StorageError("the database writer did not answer in time") from None

    def close(self) -> None:
        """Nothing to stop: there is no writer thread."""

    def _drain(self) -> None:
        while True:
            jobs: list[WriteJob] = []
            while len(jobs) < self._max_batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not jobs:
                return
            self._commit(jobs)

    def _commit(self, jobs: list[WriteJob]) -> None:
        """Commit ``jobs`` together; if a write conflicts, redo them one by one.

        A job must raise :class:`ClearanceError` before it writes anything (its
        checks come first), so a refused job needs no savepoint. A write that
        hits a constraint (a status index taken by another process meanwhile),
        or that the database aborts as a deadlock or serialization failure,
        breaks the whole transaction: then each job runs again alone, and only
        one that conflicts again fails.
        """
        try:
            self._run_batch(jobs)
        except WriteConflictError:
            for job in jobs:
                if not job.future.done():
                    try:
                        self._run_batch([job])
                    except WriteConflictError as conflict:
                        job.future.set_exception(conflict)

    def _run_batch(self, jobs: list[WriteJob]) -> None:
        outcomes: list[tuple[WriteJob, Any]] = []
        failures: list[tuple[WriteJob, BaseException]] = []
        try:
            with self._db.transaction() as session:
                events: list[AuditEvent] = []
                groups: dict[int, tuple[GroupWriter, list[WriteJob]]] = {}
                for job in jobs:
                    if job.group is not None:
                        groups.setdefault(id(job.group), (job.group, []))[1].append(job)
                        continue
                    assert job.apply is not None
                    try:
                        result, job_events = job.apply(session)
                    except ClearanceError as exc:
                        failures.append((job, exc))
                        continue
                    events.extend(job_events)
                    outcomes.append((job, result))
                for writer, members in groups.values():
                    results = writer.write_group(session, [job.payload for job in members])
                    for job, outcome in zip(members, results, strict=True):
                        if isinstance(outcome, ClearanceError):
                            failures.append((job, outcome))
                        else:
                            outcomes.append((job, outcome[0]))
                            events.extend(outcome[1])
                if events:
                    audit.append_many(session, events)
        except WriteConflictError:
            raise
        except StorageError as exc:
            self._fail(jobs, exc)
            return
        except BaseException as exc:  # noqa: BLE001 - the commit failed: every job of the batch fails with it
            self._fail(
                jobs, exc if isinstance(exc, ClearanceError) else StorageError(f"database error: {exc}")
            )
            return
        for job, result in outcomes:
            job.future.set_result(result)
        for job, error in failures:
            job.future.set_exception(error)

    @staticmethod
    def _fail(jobs: list[WriteJob], error: BaseException) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)
