"""Keeping the node's trust material current: the registry's push stream, polling, and the applier.

:class:`UpdateApplier` takes one signed document (a trust bundle, a partner's
bundle, a full status list, a status delta, a root rotation), runs it through
a copy of the :class:`~clearance.trust.TrustStore`, persists it if the trust
core accepted it, and only then publishes the new snapshot
(:class:`~node.state.TrustedState`). A refused document changes nothing.

:class:`Syncer` feeds it:

* **push**: while the registry is reachable, one ``PublicationService.Watch``
  stream. The request says what the node holds (bundle version, each list's
  ``seq``, partner bundle versions), so after a restart the registry sends
  only what is missing: nothing is downloaded twice. Heartbeats keep the
  stream alive; a stream silent for :data:`IDLE_TIMEOUT` seconds is dropped
  and reopened.
* **reconnect**: when the stream breaks, the node opens it again, saying
  what it holds, after a wait of :meth:`Syncer.backoff`: exponential from
  :data:`INITIAL_BACKOFF`, capped at ``max_backoff``, with jitter (a random
  half of it), so that thousands of nodes that lost one registry do not
  come back in step. The channel's own reconnection backoff is set from the
  same settings (:func:`node.agent.channel_options`): left to gRPC's defaults (up to
  120 s), it would override the node's and keep a node away from a
  registry that is back for minutes.
* **poll**: once the stream has been down for ``poll_interval`` seconds, the
  unary reads (``GetTrustBundle``, ``GetStatusList``) every ``poll_interval``
  seconds between reconnection attempts. A short outage therefore costs a
  reconnection that resumes from what the node holds, not a full download.
* **repair**: a delta that does not build on the held list makes the node
  fetch the full list; a bundle signed by a root the node does not know yet
  makes it walk ``GetRootHistory`` from its current root; after catching up
  (the first heartbeat) it fetches any list a trusted bundle names that it
  lacks; a list carrying more than :data:`COMPACT_AFTER` deltas is replaced
  by its full version, so a restart never replays a long chain.

Every refusal (rollback, expired bundle, bad signature, malformed or oversized
message) is written to the store's problems table, shown by ``node status``,
and the stream goes on: one bad message does not cost the good state or the
connection. A failure to write the store does end the stream, so that the
reconnection tells the registry what the node really holds.

Errors::

    VerificationError  a document was refused (recorded as a problem; never raised by the Syncer)
    TransportError     the registry could not be reached (the Syncer retries)
    StorageError       the store could not be written (the update is not applied)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from clearance.bundle import RootRotation
from clearance.encoding import parse_json
from clearance.errors import (
    ClearanceError,
    MalformedError,
    NotFoundError,
    Reason,
    StorageError,
    TransportError,
    VerificationError,
)
from clearance.rpc import to_error
from clearance.statusdelta import parse_status_delta
from clearance.statuslist import MAX_TOKEN_BYTES, parse_status_list_token
from clearance.trust import TrustStore
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from node.clock import Clock
from node.state import TrustedState
from node.store import NodeStore, Problem

log = logging.getLogger("clearance.node.sync")

DOCUMENT_KINDS = frozenset({"trust_bundle", "foreign_bundle", "status_list", "status_delta", "root_rotation"})
"""The kinds of signed document a push message or a poll carries (WatchResponse field names)."""
MAX_DOCUMENT_BYTES = MAX_TOKEN_BYTES
"""The largest document accepted: a full status list token at its cap; anything larger is refused."""
COMPACT_AFTER = 256
"""Deltas held on top of one full list before the node fetches the list in full."""
IDLE_TIMEOUT = 60.0
"""Seconds without any message (heartbeats come every 15) before the stream is presumed dead."""
CALL_TIMEOUT = 30.0
"""Seconds allowed for one unary call to the registry."""
INITIAL_BACKOFF = 0.25
"""Seconds: the first wait before reconnecting (then doubled per failure, up to ``max_backoff``)."""


@dataclass(frozen=True)
class Applied:
    """What accepting one document did."""

    kind: str
    subject: str
    changed: bool
    """False when the node already held exactly this document (nothing was written)."""


class UpdateApplier:
    """Applies one document: trust core first, persisted only if accepted, then published."""

    def __init__(self, state: TrustedState, store: NodeStore, clock: Clock) -> None:
        self._state = state
        self._store = store
        self._clock = clock

    def apply(self, kind: str, token: str) -> Applied:
        """Accept ``token`` as a document of ``kind`` (a WatchResponse field name).

        Raises:
            VerificationError: refused by the trust core (or malformed, oversized,
                of an unknown kind); nothing changed.
            StorageError: accepted but could not be written; nothing changed.
        """
        if kind not in DOCUMENT_KINDS:
            raise MalformedError(f"unknown document kind {kind[:40]!r}")
        if not isinstance(token, str) or not token:
            raise MalformedError(f"empty {kind}")
        if len(token) > MAX_DOCUMENT_BYTES:
            raise MalformedError(f"{kind} is larger than {MAX_DOCUMENT_BYTES} bytes", Reason.TOO_LARGE)
        now = self._clock()

        def change(trust: TrustStore) -> Applied:
            return _accept(trust, kind, token, now)

        def persist(trust: TrustStore, applied: Applied) -> None:
            if applied.changed:
                self._store.record(kind, applied.subject, token, now, trust)

        return self._state.update(change, persist)


def _accept(trust: TrustStore, kind: str, token: str, now: int) -> Applied:
    """Run ``token`` through ``trust`` (a copy); say what changed."""
    if kind == "trust_bundle":
        if trust.home is not None and trust.home.raw == token:
            return Applied(kind, trust.home.jurisdiction, False)
        bundle = trust.update_bundle(token, now)
        return Applied(kind, bundle.jurisdiction, True)
    if kind == "foreign_bundle":
        for jurisdiction, partner in trust.foreign.items():
            if partner.bundle.raw == token:
                return Applied(kind, jurisdiction, False)
        bundle = trust.update_foreign_bundle(token, now)
        return Applied(kind, bundle.jurisdiction, True)
    if kind == "status_list":
        parsed = parse_status_list_token(token)
        held = trust.status_lists.get(parsed.uri)
        if held is not None and held.deltas and (parsed.issued_at, parsed.seq) == (held.issued_at, held.seq):
            # The same version the node built from deltas, served whole in the same
            # second: nothing to learn, and not a second list claiming one version.
            return Applied(kind, parsed.uri, False)
        accepted = trust.update_status_list(token, now)
        return Applied(kind, accepted.uri, accepted is not held)
    if kind == "status_delta":
        updated = trust.apply_status_delta(token, now)
        return Applied(kind, updated.uri, True)
    rotation = RootRotation.parse(parse_json(token, what="root rotation", max_bytes=64 * 1024))
    if rotation.new_root == trust.root or rotation.new_root in trust.previous_roots:
        return Applied(kind, str(rotation.version), False)  # already followed
    trust.update_root(rotation)
    return Applied(kind, str(rotation.version), True)


@dataclass
class SyncStatus:
    """How the sync is going, for ``node status`` (written by the sync thread only)."""

    connected: bool = False
    last_sync: int | None = None
    """Node-clock time of the last message from the registry (it was then up to date)."""
    messages: int = 0
    bytes_received: int = 0
    reconnects: int = 0


class Syncer:
    """Runs the push stream, polling and repairs against one registry."""

    def __init__(
        self,
        applier: UpdateApplier,
        state: TrustedState,
        store: NodeStore,
        channel: grpc.Channel,
        *,
        clock: Clock,
        endpoint: str = "registry",
        poll_interval: float = 30.0,
        max_backoff: float = 60.0,
        idle_timeout: float = IDLE_TIMEOUT,
        jitter: Callable[[], float] = random.random,
        on_applied: Callable[[Applied, TrustStore], None] | None = None,
        on_message: Callable[[str, int], None] | None = None,
    ) -> None:
        self._applier = applier
        self._state = state
        self._store = store
        self._channel = channel
        self._stub = rpc.PublicationServiceStub(channel)
        self._clock = clock
        self._endpoint = endpoint
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._idle_timeout = idle_timeout
        self._jitter = jitter
        self._on_applied = on_applied
        self._on_message = on_message
        self.status = SyncStatus()
        last = store.get_meta("last_sync")
        self.status.last_sync = int(last) if last and last.isdigit() else None
        self._outage_reported = False

    # -- one document --------------------------------------------------------

    def receive(self, kind: str, token: str, *, source: str = "push") -> Applied | None:
        """Apply one document, repairing where the remedy is known; a refusal becomes a problem.

        Returns:
            What was applied, or None when the document was refused.

        Raises:
            StorageError: the store could not be written (the caller should resync).
        """
        try:
            applied: Applied | None = self._applier.apply(kind, token)
        except VerificationError as exc:
            applied = self._repair(kind, token, exc, source)
        if applied is not None:
            self._after_apply(applied)
        return applied

    def _repair(self, kind: str, token: str, exc: VerificationError, source: str) -> Applied | None:
        try:
            if kind == "status_delta" and exc.reason is Reason.STATUS_LIST_MISSING:
                uri = parse_status_delta(token).uri
                return self.fetch_status_list(uri)
            if kind == "trust_bundle" and exc.reason is Reason.ROOT_MISMATCH and self._follow_root_history():
                return self._applier.apply(kind, token)
        except VerificationError as again:
            exc = again
        except TransportError as unreachable:
            self.problem(source, kind, "unreachable", str(unreachable))
            return None
        self.problem(source, kind, exc.reason.value, exc.detail)
        return None

    def _after_apply(self, applied: Applied) -> None:
        trust = self._state.current
        if self._on_applied is not None:
            self._on_applied(applied, trust)
        if applied.kind == "status_delta":
            held = trust.status_lists.get(applied.subject)
            if held is not None and len(held.deltas) >= COMPACT_AFTER:
                try:
                    self.fetch_status_list(applied.subject)
                except (TransportError, VerificationError) as exc:
                    log.info("compaction of %s postponed: %s", applied.subject, exc)

    def problem(self, source: str, kind: str, reason: str, detail: str) -> None:
        """Record a refusal or failure for ``node status``."""
        log.warning("%s %s refused: %s: %s", source, kind, reason, detail)
        try:
            self._store.add_problem(Problem(self._clock(), f"{source} {kind}", reason, detail))
        except StorageError as exc:
            log.error("cannot record a problem: %s", exc)

    # -- unary reads ---------------------------------------------------------

    def _call(self, method: Callable[..., object], request: object) -> object:
        try:
            return method(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            raise to_error(exc, peer=f"registry {self._endpoint}") from None

    def fetch_status_list(self, uri: str) -> Applied:
        """Fetch and apply the full list ``uri``.

        Raises:
            TransportError: the registry is unreachable.
            VerificationError: the list was refused.
        """
        response = self._call(self._stub.GetStatusList, pb.GetStatusListRequest(uri=uri))
        assert isinstance(response, pb.GetStatusListResponse)
        return self._applier.apply("status_list", response.token)

    def _follow_root_history(self) -> bool:
        """Apply the registry's root rotations we lack; whether the root changed."""
        response = self._call(self._stub.GetRootHistory, pb.GetRootHistoryRequest())
        assert isinstance(response, pb.GetRootHistoryResponse)
        changed = False
        for document in response.rotations:
            changed |= self._applier.apply("root_rotation", document).changed
        return changed

    def poll_once(self) -> None:
        """Fetch everything by unary reads (the stream's fallback).

        Raises:
            TransportError: the registry is unreachable.
            StorageError: the store could not be written.
        """
        response = self._call(self._stub.GetTrustBundle, pb.GetTrustBundleRequest())
        assert isinstance(response, pb.GetTrustBundleResponse)
        self.receive("trust_bundle", response.bundle, source="poll")
        for jurisdiction in sorted(self._state.current.agreements):
            try:
                foreign = self._call(
                    self._stub.GetTrustBundle, pb.GetTrustBundleRequest(jurisdiction=jurisdiction)
                )
            except NotFoundError:
                continue
            assert isinstance(foreign, pb.GetTrustBundleResponse)
            self.receive("foreign_bundle", foreign.bundle, source="poll")
        for uri in self._listed_uris():
            lists = self._call(self._stub.GetStatusList, pb.GetStatusListRequest(uri=uri))
            assert isinstance(lists, pb.GetStatusListResponse)
            self.receive("status_list", lists.token, source="poll")
        self._synced()

    def fill_gaps(self) -> None:
        """Fetch each list a trusted bundle names that the node does not hold yet."""
        held = self._state.current.status_lists
        for uri in self._listed_uris():
            if uri not in held:
                try:
                    self.fetch_status_list(uri)
                except (TransportError, VerificationError) as exc:
                    self.problem("sync", "status_list", "missing", f"{uri}: {exc}")

    def _listed_uris(self) -> list[str]:
        trust = self._state.current
        bundles = ([trust.home] if trust.home else []) + [f.bundle for f in trust.foreign.values()]
        return [loc.uri for bundle in bundles for loc in bundle.status_lists]

    def _synced(self) -> None:
        now = self._clock()
        self.status.last_sync = now
        self._store.set_meta("last_sync", str(now))
        self._outage_reported = False

    # -- the stream ----------------------------------------------------------

    def watch_request(self) -> pb.WatchRequest:
        """What the node holds, so the registry sends only what it lacks."""
        trust = self._state.current
        return pb.WatchRequest(
            bundle_version=trust.home.version if trust.home else 0,
            status_lists=[
                pb.HeldStatusList(uri=uri, sequence=t.seq) for uri, t in trust.status_lists.items()
            ],
            foreign_bundle_versions={j: f.bundle.version for j, f in trust.foreign.items()},
        )

    def watch(self, stop: threading.Event) -> int:
        """Hold one Watch stream until it ends, goes silent, or ``stop`` is set.

        Returns:
            The number of messages received.

        Raises:
            TransportError: the stream could not be opened or broke.
            StorageError: the store could not be written.
        """
        call = self._stub.Watch(self.watch_request())
        last = [time.monotonic()]
        done = threading.Event()
        received = 0
        state = threading.Lock()

        def on_connectivity(connectivity: grpc.ChannelConnectivity) -> None:
            # Connected once the channel is up with the stream open: a caught-up node
            # hears nothing until the registry's first heartbeat, which may be 15 s away.
            with state:
                if connectivity is grpc.ChannelConnectivity.READY and not done.is_set():
                    self.status.connected = True

        self._channel.subscribe(on_connectivity, try_to_connect=True)

        def watchdog() -> None:
            while not done.wait(0.5):
                if stop.is_set() or time.monotonic() - last[0] > self._idle_timeout:
                    call.cancel()
                    return

        guard = threading.Thread(target=watchdog, name="watch-watchdog", daemon=True)
        guard.start()
        try:
            for message in call:
                last[0] = time.monotonic()
                received += 1
                self.handle(message)
        except grpc.RpcError as exc:
            if stop.is_set():
                return received
            if exc.code() is grpc.StatusCode.CANCELLED:
                raise TransportError(
                    f"no message from registry {self._endpoint} in {self._idle_timeout:g}s"
                ) from None
            if exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.problem(
                    "push", "message", Reason.TOO_LARGE.value, "a push message exceeded the size limit"
                )
            raise to_error(exc, peer=f"registry {self._endpoint}") from None
        finally:
            with state:
                done.set()
                self.status.connected = False
            self._channel.unsubscribe(on_connectivity)
        return received

    def handle(self, message: pb.WatchResponse) -> None:
        """Apply one push message; a heartbeat means the node is caught up. Bad content becomes a problem.

        Raises:
            StorageError: the store could not be written.
        """
        size = message.ByteSize()
        kind = message.WhichOneof("update")
        self.status.connected = True
        self.status.messages += 1
        self.status.bytes_received += size
        if self._on_message is not None:
            self._on_message(kind or "empty", size)
        if kind == "heartbeat":
            self._synced()
            self.fill_gaps()
            return
        if kind is None:
            self.problem("push", "message", Reason.MALFORMED.value, "a push message carried nothing")
            return
        self.receive(kind, getattr(message, kind), source="push")
        self.status.last_sync = self._clock()

    def run(self, stop: threading.Event) -> None:
        """Sync until ``stop`` is set: stream while possible, poll and back off while not."""
        failures = 0
        last_poll = float("-inf")
        down_since: float | None = None
        while not stop.is_set():
            before = self.status.messages
            try:
                self.watch(stop)
            except TransportError as exc:
                if not self._outage_reported and self.status.messages == before:
                    self.problem("sync", "stream", "unreachable", str(exc))
                    self._outage_reported = True
            except ClearanceError as exc:  # storage, or the registry refusing us: retry later
                self.problem("sync", "stream", type(exc).__name__, str(exc))
            except Exception:  # the sync thread must outlive a bug; decisions fail closed meanwhile
                log.exception("sync stream failed unexpectedly; retrying")
            if stop.is_set():
                break
            # A stream that delivered something was a connection: start the backoff over.
            failures = 1 if self.status.messages > before else failures + 1
            self.status.reconnects += 1
            now = time.monotonic()
            if failures == 1:
                down_since = now
            assert down_since is not None
            if now - down_since >= self._poll_interval and now - last_poll >= self._poll_interval:
                last_poll = now
                try:
                    self.poll_once()
                except ClearanceError as exc:
                    log.info("poll failed: %s", exc)
            stop.wait(self.backoff(failures))

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts: exponential, capped, with jitter.

        ``INITIAL_BACKOFF * 2**(failures - 1)``, at most ``max_backoff``, of which a random
        half is taken off (so every wait lies between half the ceiling and the ceiling).
        """
        ceiling = min(self._max_backoff, INITIAL_BACKOFF * (2 ** min(max(failures, 1) - 1, 16)))
        return float(ceiling * (0.5 + 0.5 * self._jitter()))
