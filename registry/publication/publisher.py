"""Publishing trust material: trust bundles, status lists, and the watch stream.

**Bundles** are built from the database (issuing keys, status lists,
agreements in force) and signed by the root key; each has a new ``version``.
:func:`ensure_fresh` republishes one before the current one nears expiry,
and keeps status lists fresh by publishing an empty delta when nothing has
changed for a while (a node refuses to decide on a stale list).

**The hub** (:class:`PublicationHub`) is each process's view of what has
been published, refreshed from the database (so changes made by another
replica are seen too) and woken at once by local changes. Each ``Watch``
stream asks it for what its subscriber lacks: a bundle it has not got, the
deltas since the list ``seq`` it holds, or the full list if it is too far
behind; then waits for the next change, sending a heartbeat when idle.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clearance.bundle import IssuingKey, StatusListLocation, TrustBundle
from clearance.errors import ClearanceError, NotFoundError, StorageError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.store import audit, statuslists
from registry.store.models import (
    AgreementRow,
    ForeignDocument,
    IssuingKeyRow,
    RootRotationRow,
    StatusChange,
    StatusListRow,
    TrustBundleRow,
)

_RECENT = 2048
"""Deltas kept in memory per list; a subscriber further behind gets the full list."""


def current_bundle(session: Session) -> TrustBundleRow | None:
    return session.execute(
        select(TrustBundleRow).order_by(TrustBundleRow.version.desc()).limit(1)
    ).scalar_one_or_none()


def register_issuing_key(session: Session, key: PublicKey, *, not_before: int, not_after: int) -> None:
    if session.get(IssuingKeyRow, key.thumbprint) is None:
        session.add(
            IssuingKeyRow(
                kid=key.thumbprint,
                public_jwk=json.dumps(key.jwk),
                not_before=not_before,
                not_after=not_after,
                active=True,
            )
        )
        session.flush()


def publish_bundle(ctx: RegistryContext, session: Session, *, now: int, reason: str) -> TrustBundleRow:
    """Sign and store a new bundle version describing the registry as it is now.

    Raises:
        StorageError: the root key is not on this machine (it was moved offline).
    """
    root = ctx.keys.root
    if root is None:
        raise StorageError(
            "the root key is offline: sign the next bundle with `clearance registry sign-bundle`"
        )
    previous = current_bundle(session)
    version = 1 if previous is None else previous.version + 1
    keys = tuple(
        IssuingKey(PublicKey.from_jwk(json.loads(row.public_jwk)), row.not_before, row.not_after)
        for row in session.execute(
            select(IssuingKeyRow).where(IssuingKeyRow.active.is_(True)).order_by(IssuingKeyRow.not_before)
        ).scalars()
    )
    lists = tuple(StatusListLocation(row.uri, row.bits) for row in statuslists.lists(session))
    agreements = tuple(
        json.loads(row.document)
        for row in session.execute(
            select(AgreementRow).where(AgreementRow.state == "in_force").order_by(AgreementRow.id)
        ).scalars()
    )
    bundle = TrustBundle(
        issuer=ctx.config.issuer,
        jurisdiction=ctx.config.jurisdiction,
        version=version,
        issued_at=now,
        expires_at=now + ctx.config.bundle_lifetime,
        root=root.kid,
        issuing_keys=keys,
        levels=ctx.config.levels,
        categories=ctx.config.categories,
        status_lists=lists,
        agreements=agreements,
        endpoint=ctx.config.endpoint or None,
    )
    row = TrustBundleRow(
        version=version, token=bundle.sign(root), issued_at=now, expires_at=bundle.expires_at
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor="system",
        action="bundle.publish",
        object_type="trust_bundle",
        object_id=str(version),
        details={"reason": reason, "expires_at": bundle.expires_at, "agreements": len(agreements)},
    )
    return row


def ensure_fresh(ctx: RegistryContext) -> bool:
    """Republish what is about to go stale. Returns whether anything was published.

    Several replicas may renew the same document at once (all of them starting
    after a pause, say): the one that loses the race tries again and finds
    nothing left to do.

    Raises:
        StorageError: the database failed.
    """
    attempts = 3
    while True:
        attempts -= 1
        try:
            return _renew(ctx)
        except StorageError as exc:
            if attempts == 0 or not isinstance(exc.__cause__, IntegrityError):
                raise


def _renew(ctx: RegistryContext) -> bool:
    now = ctx.now()
    published = False
    with ctx.db.transaction() as session:
        bundle = current_bundle(session)
        lists = statuslists.lists(session)
        listed = set()
        if bundle is not None:
            listed = {loc.uri for loc in TrustBundle.parse(bundle.token)[0].status_lists}
        if ctx.keys.root is not None and (
            bundle is None
            or bundle.expires_at - now < ctx.config.bundle_lifetime // 2
            or any(row.uri not in listed for row in lists)
        ):
            publish_bundle(ctx, session, now=now, reason="renewal" if bundle else "first bundle")
            published = True
        for row in lists:
            if now - row.published_at >= ctx.config.status_freshness_interval:
                statuslists.set_statuses(
                    session,
                    row.id,
                    [],
                    key=ctx.keys.issuing_key,
                    now=now,
                    lifetime=ctx.config.status_list_lifetime,
                )
                published = True
    if published:
        ctx.changed()
    return published


def status_list_token(ctx: RegistryContext, uri: str) -> str:
    """The current full Status List Token for ``uri`` (home or a partner's, republished).

    Raises:
        NotFoundError: no such list.
    """
    now = ctx.now()
    with ctx.db.transaction() as session:
        row = session.execute(select(StatusListRow).where(StatusListRow.uri == uri)).scalar_one_or_none()
        if row is not None:
            return statuslists.full_token(
                session,
                row.id,
                key=ctx.keys.issuing_key,
                now=now,
                lifetime=ctx.config.status_list_lifetime,
                ttl=300,
            ).token
        foreign = session.get(ForeignDocument, uri)
        if foreign is not None and foreign.kind == "status_list":
            return foreign.token
    raise NotFoundError(f"no status list {uri!r}")


def bundle_token(ctx: RegistryContext, jurisdiction: str = "") -> str:
    with ctx.db.transaction() as session:
        if jurisdiction and jurisdiction != ctx.config.jurisdiction:
            foreign = session.get(ForeignDocument, f"bundle:{jurisdiction}")
            if foreign is None:
                raise NotFoundError(f"no trust bundle held for {jurisdiction}")
            return foreign.token
        row = current_bundle(session)
        if row is None:
            raise NotFoundError("no trust bundle has been published yet")
        return row.token


def root_history(ctx: RegistryContext) -> list[str]:
    with ctx.db.transaction() as session:
        return [
            r.document
            for r in session.execute(select(RootRotationRow).order_by(RootRotationRow.version)).scalars()
        ]


# -- the hub -------------------------------------------------------------------


@dataclass
class _ListState:
    uri: str
    seq: int
    recent: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=_RECENT))


@dataclass(frozen=True)
class Held:
    """What a subscriber holds."""

    bundle_version: int
    lists: dict[str, int]
    foreign: dict[str, int]


class PublicationHub:
    """A process-wide view of published material that wakes Watch streams on change."""

    def __init__(self, ctx: RegistryContext, *, poll_interval: float = 0.1) -> None:
        self._ctx = ctx
        self._interval = poll_interval
        self._condition = threading.Condition()
        self._generation = 0
        self._bundle: tuple[int, str] | None = None
        self._lists: dict[int, _ListState] = {}
        self._foreign: dict[str, tuple[str, int, str]] = {}  # key -> (kind, version, token)
        self._rotations: list[str] = []
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = None

    # listener interface
    def publications_changed(self) -> None:
        self._poke.set()

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="publication-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poke.wait(self._interval)
            self._poke.clear()
            try:
                self.refresh()
                self.problem = None
            except (
                ClearanceError
            ) as exc:  # the database may be briefly unavailable; keep serving what we have
                self.problem = str(exc)

    def refresh(self) -> None:
        """Read what changed in the database since the last look and wake the streams."""
        changed = False
        with self._ctx.db.transaction() as session:
            bundle = current_bundle(session)
            if bundle is not None and (self._bundle is None or bundle.version > self._bundle[0]):
                self._bundle = (bundle.version, bundle.token)
                changed = True
            for list_id, uri, seq in session.execute(
                select(StatusListRow.id, StatusListRow.uri, StatusListRow.seq)
            ):
                state = self._lists.get(list_id)
                if state is None:
                    state = self._lists[list_id] = _ListState(uri, 0)
                    known = max(0, seq - _RECENT)
                    state.seq = known
                if seq > state.seq:
                    for change in statuslists.changes_since(session, list_id, state.seq, limit=_RECENT):
                        state.recent.append((change.seq, change.token))
                        state.seq = change.seq
                    changed = True
            for doc in session.execute(select(ForeignDocument)).scalars():
                held = self._foreign.get(doc.key)
                if held is None or held[1] != doc.version or held[2] != doc.token:
                    self._foreign[doc.key] = (doc.kind, doc.version, doc.token)
                    changed = True
            count = session.execute(select(func.count()).select_from(RootRotationRow)).scalar_one()
            if count != len(self._rotations):
                self._rotations = [
                    r.document
                    for r in session.execute(
                        select(RootRotationRow).order_by(RootRotationRow.version)
                    ).scalars()
                ]
                changed = True
        if changed:
            with self._condition:
                self._generation += 1
                self._condition.notify_all()

    def wait(self, generation: int, timeout: float) -> int:
        """Block until something changes after ``generation`` (or ``timeout``); the new generation."""
        with self._condition:
            if self._generation == generation and not self._stop.is_set():
                self._condition.wait(timeout)
            return self._generation

    @property
    def generation(self) -> int:
        return self._generation

    def updates_for(self, held: Held) -> tuple[list[tuple[str, str]], Held]:
        """What a subscriber holding ``held`` lacks, as (kind, token) pairs, and what it then holds."""
        out: list[tuple[str, str]] = []
        bundle_version, lists, foreign = held.bundle_version, dict(held.lists), dict(held.foreign)
        rotations = list(self._rotations)
        if self._bundle is not None and self._bundle[0] > bundle_version:
            if bundle_version == 0:
                out.extend(("root_rotation", r) for r in rotations)
            out.append(("trust_bundle", self._bundle[1]))
            bundle_version = self._bundle[0]
        for key, (kind, version, token) in sorted(self._foreign.items()):
            if kind == "bundle" and foreign.get(key, -1) < version:
                out.append(("foreign_bundle", token))
                foreign[key] = version
        for key, (kind, version, token) in sorted(self._foreign.items()):
            if kind == "status_list" and lists.get(key, -1) < version:
                out.append(("status_list", token))
                lists[key] = version
        for list_id, state in sorted(self._lists.items()):
            have = lists.get(state.uri, -1)
            if have >= state.seq:
                continue
            recent = list(state.recent)
            if have >= 0 and recent and recent[0][0] <= have + 1:
                out.extend(("status_delta", token) for seq, token in recent if seq > have)
                lists[state.uri] = state.seq
            else:
                full = self._full(list_id)
                out.append(("status_list", full.token))
                # Read now, the full list may hold changes this hub has not seen yet:
                # the subscriber holds what was sent, and gets no delta it already has.
                lists[state.uri] = max(state.seq, full.seq)
        return out, Held(bundle_version, lists, foreign)

    def _full(self, list_id: int) -> statuslists.Publication:
        ctx = self._ctx
        with ctx.db.transaction() as session:
            return statuslists.full_token(
                session,
                list_id,
                key=ctx.keys.issuing_key,
                now=ctx.now(),
                lifetime=ctx.config.status_list_lifetime,
                ttl=300,
            )

    def stream(
        self, held: Held, *, active: Callable[[], bool], heartbeat: float = 15.0
    ) -> Iterator[tuple[str, str | int]]:
        """Yield (kind, payload) forever: first what ``held`` lacks, then changes; heartbeats when idle."""
        generation = self.generation
        while active() and not self._stop.is_set():
            updates, held = self.updates_for(held)
            yield from updates
            new_generation = self.wait(generation, heartbeat)
            if new_generation == generation:
                yield ("heartbeat", int(time.time()))
            generation = new_generation


def latest_change(session: Session, list_id: int) -> StatusChange | None:
    return session.execute(
        select(StatusChange).where(StatusChange.list_id == list_id).order_by(StatusChange.seq.desc()).limit(1)
    ).scalar_one_or_none()
