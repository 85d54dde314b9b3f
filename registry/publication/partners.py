"""Following partner registries: their verified trust material, stored for our hub to republish.

:class:`PartnerSync` follows each partner's watch stream; whenever the
partner publishes, it fetches the partner's bundle and status lists, verifies
them against the partner root named in the agreement (through a
:class:`~clearance.trust.TrustStore` that holds our own bundle: the same rules
as a node, rollback and freeze included), and stores them. A partner that is
unreachable keeps its last verified material until that material expires;
nothing the partner's root did not sign is ever stored. A partner bundle that
no longer lists the agreement means the partner ended it: we end it too.

This module is a gRPC *client* of the partners' PublicationService: the
only place outside the servicers that speaks the wire format.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.channel import open_channel
from clearance.errors import ClearanceError, StorageError, VerificationError
from clearance.rpc import to_error
from clearance.trust import TrustStore
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.context import RegistryContext
from registry.publication import publisher
from registry.store.models import AgreementRow, ForeignDocument
from registry.workflows.federation import IN_FORCE, end_agreement, list_agreements, our_root

log = logging.getLogger("clearance.registry.partners")


@dataclass
class Partner:
    """A registry we have an agreement with: where to reach it, and how to trust its TLS."""

    agreement_id: str
    jurisdiction: str
    endpoint: str
    ca_pem: str | None


class PartnerSync:
    """Keeps every partner's verified bundle and status lists in our database."""

    def __init__(self, ctx: RegistryContext, *, poll_interval: float = 30.0) -> None:
        self._ctx = ctx
        self._poll = poll_interval
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._manager: threading.Thread | None = None
        self._streams: set[Any] = set()
        self._streams_lock = threading.Lock()

    def start(self) -> None:
        self._manager = threading.Thread(target=self._manage, name="partner-sync", daemon=True)
        self._manager.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following partners; wait (up to ``timeout`` each) for the threads to finish."""
        self._stop.set()
        with self._streams_lock:
            streams = list(self._streams)
        for stream in streams:  # do not wait for the partner's next heartbeat
            stream.cancel()
        for thread in (self._manager, *self._threads.values()):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    def _manage(self) -> None:
        while not self._stop.is_set():
            try:
                for partner in self._partners():
                    thread = self._threads.get(partner.agreement_id)
                    if thread is None or not thread.is_alive():
                        thread = threading.Thread(
                            target=self._follow,
                            args=(partner,),
                            name=f"partner-{partner.jurisdiction}",
                            daemon=True,
                        )
                        self._threads[partner.agreement_id] = thread
                        thread.start()
            except ClearanceError as exc:
                log.warning(json.dumps({"event": "partner_sync_failed", "error": str(exc)}))
            self._stop.wait(2.0)

    def _partners(self) -> list[Partner]:
        return [
            Partner(row.id, row.partner_jurisdiction, row.partner_endpoint, row.partner_ca_pem)
            for row in list_agreements(self._ctx)
            if row.state == IN_FORCE
        ]

    def _in_force(self, agreement_id: str) -> bool:
        return any(p.agreement_id == agreement_id for p in self._partners())

    def _follow(self, partner: Partner) -> None:
        """Follow one partner: a watch stream as the trigger, fetches for the material."""
        backoff = 1.0
        while not self._stop.is_set() and self._in_force(partner.agreement_id):
            channel = open_channel(
                partner.endpoint,
                ca_pem=partner.ca_pem.encode() if partner.ca_pem else None,
                insecure=not partner.ca_pem,
            )
            try:
                stub = rpc.PublicationServiceStub(channel)
                self.sync_once(partner, stub)
                backoff = 1.0
                stream = stub.Watch(pb.WatchRequest(), timeout=self._poll * 10)
                with self._streams_lock:
                    self._streams.add(stream)
                try:
                    for message in stream:
                        if self._stop.is_set() or not self._in_force(partner.agreement_id):
                            break
                        if message.WhichOneof("update") in ("trust_bundle", "status_list", "status_delta"):
                            self.sync_once(partner, stub)
                finally:
                    with self._streams_lock:
                        self._streams.discard(stream)
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    break  # our own cancellation at stop
                self._record(partner, str(to_error(exc, peer=f"partner {partner.jurisdiction}")))
            except ClearanceError as exc:
                self._record(partner, str(exc))
            finally:
                channel.close()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._poll)

    def sync_once(self, partner: Partner, stub: rpc.PublicationServiceStub) -> None:
        """Fetch, verify and store the partner's bundle and status lists.

        Raises:
            TransportError: the partner could not be reached.
            VerificationError: the partner sent material its root did not sign, an
                older version than we hold, or a bundle without the agreement.
        """
        ctx = self._ctx
        now = ctx.now()
        try:
            bundle_token = stub.GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10).bundle
        except grpc.RpcError as exc:
            raise to_error(exc, peer=f"partner {partner.jurisdiction}") from None
        trust = self._trust_store(now)
        try:
            foreign = trust.update_foreign_bundle(bundle_token, now)
        except VerificationError as exc:
            if "terminated" in exc.detail and not self._partner_ended(partner, exc.detail):
                raise VerificationError(
                    exc.reason,
                    f"{partner.jurisdiction} does not list agreement {partner.agreement_id} yet: "
                    "waiting for it to import the agreement",
                ) from exc
            raise
        lists = []
        for location in foreign.status_lists:
            try:
                token = stub.GetStatusList(pb.GetStatusListRequest(uri=location.uri), timeout=30).token
            except grpc.RpcError as exc:
                raise to_error(exc, peer=f"partner {partner.jurisdiction}") from None
            lists.append((location.uri, trust.update_status_list(token, now), token))
        with ctx.db.transaction() as session:
            changed = _store(
                session,
                f"bundle:{foreign.jurisdiction}",
                foreign.jurisdiction,
                "bundle",
                bundle_token,
                foreign.version,
                now,
            )
            for uri, parsed, token in lists:
                changed |= _store(session, uri, foreign.jurisdiction, "status_list", token, parsed.seq, now)
            row = session.get(AgreementRow, partner.agreement_id)
            if row is not None:
                row.last_sync, row.problem = now, None
        if changed:
            ctx.changed()

    def _trust_store(self, now: int) -> TrustStore:
        """A verifier's view holding our own bundle and what we already accepted from partners."""
        ctx = self._ctx
        trust = TrustStore(our_root(ctx))
        trust.update_bundle(publisher.bundle_token(ctx), now)
        with ctx.db.transaction(readonly=True) as session:
            held = list(session.execute(select(ForeignDocument).order_by(ForeignDocument.kind)).scalars())
        for doc in held:  # bundles sort before status lists
            try:
                if doc.kind == "bundle":
                    trust.update_foreign_bundle(doc.token, now)
                else:
                    trust.update_status_list(doc.token, now)
            except ClearanceError:
                continue  # expired or no longer covered: the fresh copy replaces it
        return trust

    def _partner_ended(self, partner: Partner, why: str) -> bool:
        """End the agreement here if the partner listed it before; returns whether it was ended.

        A partner that has never listed it (we never synced with it) has not ended it: it has
        not imported it yet, and the agreement stays in force here while we wait for it.
        """
        ctx = self._ctx
        now = ctx.now()
        with ctx.db.transaction() as session:
            row = session.get(AgreementRow, partner.agreement_id)
            if row is None or row.state != IN_FORCE:
                return True
            if row.last_sync is None:
                return False
            end_agreement(
                ctx,
                session,
                row.id,
                reason=f"ended by {partner.jurisdiction}: {why}",
                actor="system",
                now=now,
            )
        ctx.changed()
        return True

    def _record(self, partner: Partner, problem: str) -> None:
        log.warning(
            json.dumps({"event": "partner_sync_problem", "partner": partner.jurisdiction, "problem": problem})
        )
        try:
            with self._ctx.db.transaction() as session:
                row = session.get(AgreementRow, partner.agreement_id)
                if row is not None:
                    row.problem = problem[:500]
        except StorageError:
            pass


def _store(
    session: Session, key: str, jurisdiction: str, kind: str, token: str, version: int, now: int
) -> bool:
    """Keep ``token`` if it is newer than what is held; returns whether it changed anything."""
    held = session.get(ForeignDocument, key)
    if held is not None and (held.version > version or held.token == token):
        return False
    if held is None:
        session.add(
            ForeignDocument(
                key=key, jurisdiction=jurisdiction, kind=kind, token=token, version=version, fetched_at=now
            )
        )
    else:
        held.token, held.version, held.fetched_at = token, version, now
    return True


def start_partner_sync(ctx: RegistryContext) -> PartnerSync:
    sync = ctx.resource("partners.sync", lambda: PartnerSync(ctx))
    sync.start()
    return sync


def stop_partner_sync(ctx: RegistryContext) -> None:
    sync = ctx.drop_resource("partners.sync")
    if sync is not None:
        sync.stop()
