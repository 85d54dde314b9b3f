"""Group commit: many concurrent writes, one transaction.

Under load, issuing one credential per transaction spends most of its time
in BEGIN/COMMIT and in waiting for the audit chain's head lock. Request
threads therefore do their expensive work (checks, signing) first, then hand
a small *write job* to the :class:`WriteBatcher`: a payload and the
:class:`GroupWriter` that writes payloads of its kind. Whoever finds no batch
running takes every job waiting and runs them in one transaction: each
group writer writes all its payloads at once (one query for all, one insert
for all), a payload refused by its checks (an assessment withdrawn
meanwhile) simply drops out, a write conflict (a status index taken
meanwhile) makes the batch run again job by job so only that job fails; then
their audit entries are appended under one lock of the chain's head, and the
batch commits once. Each caller gets its own result or exception.

Nothing is acknowledged before its commit: a failed commit fails every job
of the batch, and none of them left anything behind.

The writers belong to the layers above; this module knows them only as the
:class:`GroupWriter` protocol, typed by what they take and what they return,
so :meth:`WriteBatcher.submit` hands back exactly what the writer wrote.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, cast

from sqlalchemy.orm import Session

from clearance.errors import ClearanceError, StorageError, WriteConflictError
from registry.store import audit
from registry.store.db import Database

MAX_BATCH = 256

Payload = TypeVar("Payload")
Result = TypeVar("Result")
Payload_contra = TypeVar("Payload_contra", contravariant=True)
Result_co = TypeVar("Result_co", covariant=True)


@dataclass(frozen=True)
class Written(Generic[Result_co]):
    """What a group writer made of one payload: its result, and the audit entries that record it."""

    result: Result_co
    audit: tuple[audit.Entry, ...] = ()


class GroupWriter(Protocol[Payload_contra, Result_co]):
    """Writes many payloads of one kind at once, inside the batch's transaction."""

    def write_group(
        self, session: Session, payloads: Sequence[Payload_contra]
    ) -> Sequence[Written[Result_co] | ClearanceError]:
        """One outcome per payload, in order: what was written, or the error refusing it.

        A refused payload must not have written anything. A write that
        conflicts with another transaction raises (the database boundary makes
        it a :class:`~clearance.errors.WriteConflictError`), and the batcher
        runs each job again alone.
        """
        ...


@dataclass(eq=False)
class _Job(Generic[Payload, Result]):
    """One caller's payload, the writer for it, and where its outcome goes."""

    writer: GroupWriter[Payload, Result]
    payload: Payload
    future: Future[Result] = field(default_factory=Future)

    def settle(self, outcome: Written[Result] | ClearanceError) -> None:
        """Hand the caller its outcome (once the batch has committed)."""
        if isinstance(outcome, ClearanceError):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome.result)


class _Batch:
    """The jobs of one transaction, grouped by writer in the order they came."""

    def __init__(self, jobs: Sequence[_Job[object, object]]) -> None:
        self.jobs = jobs
        self._groups: dict[int, list[_Job[object, object]]] = {}
        for job in jobs:
            self._groups.setdefault(id(job.writer), []).append(job)

    def write(self, session: Session) -> list[tuple[_Job[object, object], Written[object] | ClearanceError]]:
        """Run every writer on its jobs' payloads; each job with its outcome."""
        outcomes: list[tuple[_Job[object, object], Written[object] | ClearanceError]] = []
        for members in self._groups.values():
            written = members[0].writer.write_group(session, [job.payload for job in members])
            if len(written) != len(members):
                raise StorageError("a group writer returned another number of outcomes than payloads")
            outcomes.extend(zip(members, written, strict=True))
        return outcomes


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
        self._queue: queue.SimpleQueue[_Job[object, object]] = queue.SimpleQueue()
        self._leader = threading.Lock()

    @property
    def waiting(self) -> int:
        """How many jobs are queued for the next batch (not counting the one being written)."""
        return self._queue.qsize()

    def submit(
        self, writer: GroupWriter[Payload, Result], payload: Payload, *, timeout: float = 60.0
    ) -> Result:
        """Write ``payload`` with ``writer`` in a batch; return what it wrote, or raise what refused it.

        Raises:
            ClearanceError: the writer refused the payload (its error, as it raised it).
            WriteConflictError: the payload's write conflicted again when run alone.
            StorageError: the batch's transaction failed, or no answer came within ``timeout``.
        """
        job: _Job[Payload, Result] = _Job(writer, payload)
        # One queue holds the jobs of every writer; a batch hands each writer only
        # the payloads of its own jobs, which are of the type it takes.
        self._queue.put(cast("_Job[object, object]", job))
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

    def _drain(self) -> None:
        while True:
            jobs: list[_Job[object, object]] = []
            while len(jobs) < self._max_batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not jobs:
                return
            self._commit(jobs)

    def _commit(self, jobs: list[_Job[object, object]]) -> None:
        """Commit ``jobs`` together; if a write conflicts, redo them one by one.

        A job must be refused before it writes anything (its checks come
        first), so a refused job needs no savepoint. A write that hits a
        constraint (a status index taken by another process meanwhile), or
        that the database aborts as a deadlock or serialization failure,
        breaks the whole transaction: then each job runs again alone, and only
        one that conflicts again fails.
        """
        try:
            self._run(jobs)
        except WriteConflictError:
            for job in jobs:
                if not job.future.done():
                    try:
                        self._run([job])
                    except WriteConflictError as conflict:
                        job.future.set_exception(conflict)

    def _run(self, jobs: list[_Job[object, object]]) -> None:
        """One transaction for ``jobs``; their outcomes once it committed.

        Raises:
            WriteConflictError: the transaction conflicted; no job has an outcome yet.
        """
        batch = _Batch(jobs)
        try:
            with self._db.transaction() as session:
                outcomes = batch.write(session)
                entries = [
                    entry
                    for _job, outcome in outcomes
                    if not isinstance(outcome, ClearanceError)
                    for entry in outcome.audit
                ]
                if entries:
                    audit.append_many(session, entries)
        except WriteConflictError:
            raise
        except ClearanceError as exc:
            self._fail(jobs, exc)
            return
        except BaseException as exc:  # noqa: BLE001 - the commit failed: every job of the batch fails with it
            self._fail(jobs, StorageError(f"database error: {exc}"))
            return
        for job, outcome in outcomes:
            job.settle(outcome)

    @staticmethod
    def _fail(jobs: list[_Job[object, object]], error: BaseException) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)
