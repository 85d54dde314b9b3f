"""The publication hub: each process's view of what is published, and the ``Watch`` streams on it.

**Learning of changes.** A thread (:meth:`PublicationHub._run`) keeps an
immutable :class:`Snapshot` of the published material current. It wakes on

* a local commit (the context's :meth:`~registry.context.ChangeListener.publications_changed`),
* another replica's commit, through the :class:`~registry.publication.changes.ChangeFeed`
  (PostgreSQL ``LISTEN/NOTIFY``), or
* its poll: on SQLite every ``poll_interval`` seconds; on PostgreSQL only as
  a backstop, every :data:`BACKSTOP_SECONDS`.

Each look is a cheap version comparison (the newest bundle version, each
list's ``seq``, each partner document's version, the number of root
rotations); documents are read only when their version moved.

**Streams** run on the server's event loop as coroutines: a stream costs no
thread. Each one compares what its subscriber holds with the current
snapshot and sends what is missing (a bundle, the deltas after the held
``seq``, or the full list when the subscriber is further behind than the
deltas kept in memory), then waits for the next change, sending a heartbeat
when idle. A full list is read (and signed, if it changed) at most once per
list version, however many streams need it at once, by a small pool of its
own: a reconnect storm of every node costs one read per list, not one per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent import futures
from dataclasses import dataclass, field, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearance.errors import ClearanceError
from registry.context import RegistryContext
from registry.publication.changes import ChangeFeed, open_change_feed
from registry.store import statuslists
from registry.store.models import ForeignDocument, RootRotationRow, StatusListRow, TrustBundleRow

log = logging.getLogger("clearance.registry.hub")

RECENT = 2048
"""Deltas kept in memory per list; a subscriber further behind gets the full list."""
GROUPS = 64
"""Streams are woken in this many groups, one after the other, so calls arriving meanwhile are served
between groups; heartbeats go to one group at a time, spread over the period."""
BACKSTOP_SECONDS = 5.0
"""With a change feed, how often the hub looks anyway (a replica may die between commit and notify)."""


@dataclass(frozen=True)
class ListView:
    uri: str
    seq: int
    recent: tuple[tuple[int, str], ...] = ()
    """(seq, delta token), consecutive and ending at ``seq``."""


@dataclass(frozen=True)
class Snapshot:
    """What is published, as one immutable value (swapped whole by the hub thread)."""

    generation: int = 0
    bundle: tuple[int, str] | None = None
    lists: dict[int, ListView] = field(default_factory=dict)
    foreign: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    """key -> (kind, version, token)."""
    foreign_marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """key -> (version, fetched_at): how a partner document's change is noticed without reading it."""
    rotations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Held:
    """What a subscriber holds."""

    bundle_version: int
    lists: dict[str, int]
    foreign: dict[str, int]


class PublicationHub:
    """A process-wide view of published material that wakes Watch streams on change."""

    def __init__(
        self,
        ctx: RegistryContext,
        *,
        poll_interval: float = 0.1,
        feed: ChangeFeed | None = None,
        full_list_threads: int = 2,
    ) -> None:
        self._ctx = ctx
        self._feed = feed if feed is not None else open_change_feed(ctx.db)
        self._interval = poll_interval if not self._feed.notifies else max(poll_interval, BACKSTOP_SECONDS)
        self._snapshot = Snapshot()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events = [asyncio.Event() for _ in range(GROUPS)]
        """What each group of streams waits on (replaced each time it is set)."""
        self._cascades: set[asyncio.Future[None]] = set()
        self._ticker: asyncio.Future[None] | None = None
        self._ticks = [0] * GROUPS
        self._joined = 0
        self._reads = futures.ThreadPoolExecutor(full_list_threads, thread_name_prefix="full-lists")
        self._fulls: dict[int, statuslists.Publication] = {}
        self._reading: dict[int, asyncio.Future[statuslists.Publication]] = {}
        self.problem: str | None = None
        self.full_reads = 0
        """How many times a full list was read for streams (a storm should not move it much)."""

    # -- the listener interface and the thread ------------------------------------

    def publications_changed(self) -> None:
        """Told after a local commit: look now, and tell the other replicas."""
        self._poke.set()
        self._feed.announce()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve streams on ``loop`` (the server's event loop)."""
        self._loop = loop

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="publication-hub", daemon=True)
        self._thread.start()
        self._feed.start(self._poke)

    def stop(self) -> None:
        """End every stream (they finish normally) and stop looking."""
        self._stop.set()
        self._poke.set()
        self._feed.close()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._reads.shutdown(wait=False, cancel_futures=True)

    @property
    def feed(self) -> ChangeFeed:
        """How this hub hears of other replicas' commits."""
        return self._feed

    @property
    def poll_interval(self) -> float:
        """Seconds between looks when nothing is announced (a backstop where changes are announced)."""
        return self._interval

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def generation(self) -> int:
        return self._snapshot.generation

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poke.wait(self._interval)
            self._poke.clear()
            if self._stop.is_set():
                break
            try:
                self.refresh()
                self.problem = None
            except (
                ClearanceError
            ) as exc:  # the database may be briefly unavailable; keep serving what we have
                self.problem = str(exc)

    # -- reading the database -----------------------------------------------------

    def refresh(self) -> None:
        """Compare versions with the database; read what moved; wake the streams if anything did."""
        with self._refresh_lock, self._ctx.db.transaction(readonly=True) as session:
            old = self._snapshot
            new = self._look(session, old)
        if new is not old:
            self._snapshot = new
            self._wake()

    def _look(self, session: Session, old: Snapshot) -> Snapshot:
        changes: dict[str, object] = {}
        newest = session.execute(select(func.max(TrustBundleRow.version))).scalar()
        if newest is not None and (old.bundle is None or newest > old.bundle[0]):
            token = session.execute(
                select(TrustBundleRow.token).where(TrustBundleRow.version == newest)
            ).scalar_one()
            changes["bundle"] = (newest, token)
        lists = dict(old.lists)
        for list_id, uri, seq in session.execute(
            select(StatusListRow.id, StatusListRow.uri, StatusListRow.seq)
        ):
            view = lists.get(list_id)
            if view is None:
                view = ListView(uri, max(0, seq - RECENT))
            if seq > view.seq:
                recent = list(view.recent)
                for change in statuslists.changes_since(session, list_id, view.seq, limit=RECENT):
                    recent.append((change.seq, change.token))
                view = ListView(uri, recent[-1][0] if recent else view.seq, tuple(recent[-RECENT:]))
            if view is not old.lists.get(list_id):
                lists[list_id] = view
        if lists != old.lists:
            changes["lists"] = lists
        marks = {
            key: (version, fetched_at)
            for key, version, fetched_at in session.execute(
                select(ForeignDocument.key, ForeignDocument.version, ForeignDocument.fetched_at)
            )
        }
        if marks != old.foreign_marks:
            foreign = {k: v for k, v in old.foreign.items() if k in marks}
            moved = [k for k, mark in marks.items() if old.foreign_marks.get(k) != mark]
            for doc in session.execute(
                select(ForeignDocument).where(ForeignDocument.key.in_(moved))
            ).scalars():
                foreign[doc.key] = (doc.kind, doc.version, doc.token)
            changes["foreign_marks"] = marks
            if foreign != old.foreign:
                changes["foreign"] = foreign
        count = session.execute(select(func.count()).select_from(RootRotationRow)).scalar_one()
        if count != len(old.rotations):
            changes["rotations"] = tuple(
                session.execute(select(RootRotationRow.document).order_by(RootRotationRow.version)).scalars()
            )
        if not changes:
            return old
        moved_anything = set(changes) != {"foreign_marks"}
        generation = old.generation + 1 if moved_anything else old.generation
        return replace(old, generation=generation, **changes)  # type: ignore[arg-type]

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile has no stream left to wake
            loop.call_soon_threadsafe(self._wake_streams)

    def _wake_streams(self) -> None:
        """Wake every stream, a group at a time (on the loop): other calls are served in between."""
        cascade = asyncio.ensure_future(self._cascade())
        self._cascades.add(cascade)
        cascade.add_done_callback(self._cascades.discard)
        if self._stop.is_set() and self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _cascade(self) -> None:
        for group in range(GROUPS):
            self._wake_group(group)
            await asyncio.sleep(0)  # the woken group runs; calls that arrived meanwhile run too

    def _wake_group(self, group: int) -> None:
        event = self._events[group]
        self._events[group] = asyncio.Event()
        event.set()

    # -- streams (on the event loop) ----------------------------------------------

    async def stream(
        self, held: Held, *, done: Callable[[], bool], heartbeat: float = 15.0
    ) -> AsyncIterator[tuple[str, str | int]]:
        """Yield (kind, payload): first what ``held`` lacks, then each change; a heartbeat every ``heartbeat`` s.

        Heartbeats come from one timer of the hub (the first stream's period), which wakes one
        group of streams at a time, not from a timer per stream.

        Ends when the hub stops or ``done()`` says the call is over.

        Raises:
            StorageError: a full list could not be read.
        """
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick(heartbeat))
        group = self._joined % GROUPS
        self._joined += 1
        ticks = self._ticks[group]
        bundle_version, lists, foreign = held.bundle_version, dict(held.lists), dict(held.foreign)
        while not self._stop.is_set() and not done():
            changed = self._events[group]
            snapshot = self._snapshot
            if snapshot.bundle is not None and snapshot.bundle[0] > bundle_version:
                if bundle_version == 0:
                    for rotation in snapshot.rotations:
                        yield ("root_rotation", rotation)
                yield ("trust_bundle", snapshot.bundle[1])
                bundle_version = snapshot.bundle[0]
            for key, (kind, version, token) in sorted(snapshot.foreign.items()):
                if kind == "bundle" and foreign.get(key, -1) < version:
                    yield ("foreign_bundle", token)
                    foreign[key] = version
            for key, (kind, version, token) in sorted(snapshot.foreign.items()):
                if kind == "status_list" and lists.get(key, -1) < version:
                    yield ("status_list", token)
                    lists[key] = version
            for list_id, view in sorted(snapshot.lists.items()):
                have = lists.get(view.uri, -1)
                if have >= view.seq:
                    continue
                first = view.recent[0][0] if view.recent else None
                if have >= 0 and first is not None and first <= have + 1:
                    for _seq, token in view.recent[have + 1 - first :]:
                        yield ("status_delta", token)
                    lists[view.uri] = view.seq
                else:
                    full = await self._full(list_id, view.seq)
                    yield ("status_list", full.token)
                    # The full list may hold changes this snapshot lacks: the subscriber
                    # holds what was sent, and gets no delta it already has.
                    lists[view.uri] = max(view.seq, full.seq)
            if self._stop.is_set() or done():
                return
            await changed.wait()
            if self._ticks[group] != ticks:  # woken by the hub's heartbeat tick
                ticks = self._ticks[group]
                yield ("heartbeat", int(time.time()))

    async def _tick(self, heartbeat: float) -> None:
        """Wake one group of streams each ``heartbeat / GROUPS`` seconds to send its heartbeat.

        One timer for all streams, and their heartbeats spread over the period, never all at once.
        """
        group = 0
        while not self._stop.is_set():
            await asyncio.sleep(heartbeat / GROUPS)
            self._ticks[group] += 1
            self._wake_group(group)
            group = (group + 1) % GROUPS

    async def _full(self, list_id: int, seq: int) -> statuslists.Publication:
        """The full list at ``seq`` or later: read once, however many streams ask at once."""
        cached = self._fulls.get(list_id)
        if cached is not None and cached.seq >= seq:
            return cached
        pending = self._reading.get(list_id)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self._reads, self._read_full, list_id)
            self._reading[list_id] = pending

            def settle(done: asyncio.Future[statuslists.Publication]) -> None:
                self._reading.pop(list_id, None)
                if not done.cancelled() and done.exception() is None:
                    publication = done.result()
                    held = self._fulls.get(list_id)
                    if held is None or publication.seq >= held.seq:
                        self._fulls[list_id] = publication

            pending.add_done_callback(settle)
        return await asyncio.shield(pending)

    def _read_full(self, list_id: int) -> statuslists.Publication:
        ctx = self._ctx
        self.full_reads += 1
        with ctx.db.transaction() as session:
            return statuslists.full_token(
                session,
                list_id,
                key=ctx.keys.issuing_key,
                now=ctx.now(),
                lifetime=ctx.config.status_list_lifetime,
                ttl=300,
            )

    def describe(self) -> dict[str, object]:
        """For logs and tests: what the hub holds."""
        snapshot = self._snapshot
        return {
            "generation": snapshot.generation,
            "bundle": snapshot.bundle[0] if snapshot.bundle else None,
            "lists": {v.uri: v.seq for v in snapshot.lists.values()},
            "foreign": sorted(snapshot.foreign),
            "problem": self.problem,
        }
