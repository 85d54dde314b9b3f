"""Partner sync and the agreement's two ends: a partner that has not imported it yet, and one that ended it.

Both registries import the same agreement, one after the other, possibly days
apart. Until the partner's bundle lists the agreement, partner sync has nothing
to store and says why; it must not read the partner's silence as a
termination. Once the partner has listed it, a partner bundle without it means
the partner ended it: the agreement ends here too, the partner's material is
dropped, and a bundle without it is published to our nodes at once.
"""

from __future__ import annotations

import grpc
import pytest

from clearance.bundle import TrustBundle
from clearance.errors import Reason, VerificationError
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from registry.publication.partners import Partner, PartnerSync
from tests.federation.conftest import LocalRegistry, agreement_between

pytestmark = pytest.mark.database


def test_a_partner_that_has_not_imported_the_agreement_yet_is_waited_for(
    jp: LocalRegistry, us: LocalRegistry
) -> None:
    agreement = agreement_between(jp, us)
    jp.import_agreement(agreement, us)
    sync, partner = PartnerSync(jp.ctx), Partner(agreement.id, "US", us.endpoint, None)

    with pytest.raises(VerificationError) as waiting:
        sync.sync_once(partner, us.publication())

    assert waiting.value.reason is Reason.AGREEMENT_TERMINATED
    assert "US does not list agreement JP-US-1 yet" in waiting.value.detail
    (row,) = jp.agreements()
    assert row.state == common.AGREEMENT_STATE_IN_FORCE
    with pytest.raises(grpc.RpcError):
        jp.publication().GetTrustBundle(pb.GetTrustBundleRequest(jurisdiction="US"), timeout=10)

    us.import_agreement(agreement, jp)
    sync.sync_once(partner, us.publication())

    (row,) = jp.agreements()
    assert row.state == common.AGREEMENT_STATE_IN_FORCE
    assert row.last_partner_sync.seconds == jp.clock()
    assert not row.partner_problem
    assert jp.node_trust(jp.clock()).foreign["US"].agreement.id == agreement.id


def test_a_partner_that_no_longer_lists_the_agreement_has_ended_it(
    jp: LocalRegistry, us: LocalRegistry
) -> None:
    agreement = agreement_between(jp, us)
    jp.import_agreement(agreement, us)
    us.import_agreement(agreement, jp)
    sync, partner = PartnerSync(jp.ctx), Partner(agreement.id, "US", us.endpoint, None)
    sync.sync_once(partner, us.publication())
    version = jp.bundle_version()

    us.call(
        "FederationService",
        "TerminateAgreement",
        pb.TerminateAgreementRequest(id=agreement.id, reason="the programme has ended"),
    )
    with pytest.raises(VerificationError) as ended:
        sync.sync_once(partner, us.publication())

    assert ended.value.reason is Reason.AGREEMENT_TERMINATED
    assert "US no longer lists agreement JP-US-1 (terminated)" in ended.value.detail
    (row,) = jp.agreements()
    assert row.state == common.AGREEMENT_STATE_TERMINATED
    with pytest.raises(grpc.RpcError) as dropped:
        jp.publication().GetTrustBundle(pb.GetTrustBundleRequest(jurisdiction="US"), timeout=10)
    assert dropped.value.code() is grpc.StatusCode.NOT_FOUND
    bundle = jp.publication().GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10).bundle
    published = TrustBundle.parse(bundle)[0]
    assert published.version > version
    assert published.agreements == ()
    events = jp.call(
        "AuditService", "ListAuditEvents", pb.ListAuditEventsRequest(action="agreement.terminate")
    )
    (event,) = events.events
    assert "ended by US" in event.details_json
