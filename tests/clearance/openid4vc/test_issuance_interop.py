"""A wallet we did not write (@openid4vc/openid4vci) redeems an offer from our issuer over HTTPS."""

from __future__ import annotations

from clearance.keys import SigningKey
from tests.factories import NOW, Holder, Verifier, present_credential
from tests.interop.node_scripts import run_node
from tests.openid4vc_worlds import IssuerWorld


def test_openid4vci_library_receives_a_credential_our_node_accepts(issuer: IssuerWorld) -> None:
    made = issuer.offer()
    code, answer = run_node(
        "vci_holder.mjs", made.offer.uri(), made.tx_code or "", str(NOW), ca_file=issuer.tls.ca
    )

    assert code == 0, answer
    holder = Holder(SigningKey.from_private_jwk(answer["private_jwk"]))
    assert issuer.issued_to == [holder.key.kid]
    node = Verifier.synced(issuer.world)
    verified = node.verify(present_credential(answer["credential"], holder, nonce=node.challenge()))
    assert verified.jurisdiction == "JP"


def test_openid4vci_library_by_reference_and_its_second_redemption_is_refused(issuer: IssuerWorld) -> None:
    made = issuer.offer()
    reference = made.reference_uri()
    code, answer = run_node("vci_holder.mjs", reference, made.tx_code or "", str(NOW), ca_file=issuer.tls.ca)
    assert code == 0, answer

    code, answer = run_node(
        "vci_holder.mjs", made.offer.uri(), made.tx_code or "", str(NOW), ca_file=issuer.tls.ca
    )
    assert (code, answer["error"]) == (2, "invalid_grant")
