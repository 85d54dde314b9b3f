"""One list of checks: the fast path, the explaining path and ``inspect`` refuse the same inputs alike.

Presentations are drawn from the ways a credential or its key binding can be
wrong (a level or category the issuer does not define, an issuing time
outside the key's window, not yet valid or expired, a key binding for
another audience, stale, over other disclosures, signed by another key, a
tampered issuer signature), alone and combined.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.bundle import TrustBundle
from clearance.credentials import PERSONNEL_VCT
from clearance.errors import Reason, VerificationError
from clearance.inspect import IssuingKeys, Trust, inspect_artifact
from clearance.verify import DEFAULT_KB_MAX_AGE, DEFAULT_LEEWAY, check_fast, check_in_order
from tests.factories import DAY, NOW, Holder, RegistryWorld, Verifier, present_credential

WORLD = RegistryWorld.create("JP")
NODE = Verifier.synced(WORLD)
BUNDLE, _ = TrustBundle.parse(WORLD.bundle())


@dataclass(frozen=True)
class Case:
    level: str
    categories: tuple[str, ...]
    issued_at: int
    lifetime: int
    kb_issued_at: int
    audience: str
    kb_by_other_key: bool
    drop_disclosure: bool
    tamper_signature: bool


cases = st.builds(
    Case,
    level=st.sampled_from(["SECRET", "TOP_SECRET", "CONFIDENTIAL", "COSMIC"]),
    categories=st.sampled_from([("cyber-threat",), ("cyber-threat", "joint-research"), ("space-lasers",)]),
    issued_at=st.sampled_from([NOW, NOW - DAY, NOW - 40 * DAY, NOW + 10]),
    lifetime=st.sampled_from([365 * DAY, 10, DAY]),
    kb_issued_at=st.sampled_from(
        [NOW, NOW - 30, NOW + 30, NOW + 2 * DEFAULT_LEEWAY, NOW - 2 * DEFAULT_KB_MAX_AGE]
    ),
    audience=st.sampled_from(["node-a", "node-b"]),
    kb_by_other_key=st.booleans(),
    drop_disclosure=st.booleans(),
    tamper_signature=st.booleans(),
)


def _presentation(case: Case) -> str:
    credential, holder = WORLD.issue(
        level=case.level, categories=case.categories, issued_at=case.issued_at, lifetime=case.lifetime
    )
    if case.tamper_signature:
        jwt, _, rest = credential.partition("~")
        head, payload, signature = jwt.split(".")
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
        credential = f"{head}.{payload}.{signature}~{rest}"
    signer = Holder() if case.kb_by_other_key else holder
    presentation = present_credential(
        credential,
        signer,
        nonce="n" * 22,
        audience=case.audience,
        disclose=("employer", "family_name"),
        issued_at=case.kb_issued_at,
    )
    if case.drop_disclosure:  # the key binding then covers other disclosures than those sent
        first, _, rest = presentation.partition("~")
        presentation = f"{first}~{rest.partition('~')[2]}"
    return presentation


def _explained(presentation: str) -> Reason | None:
    try:
        check_in_order(
            presentation, NODE.trust, "node-a", NOW, PERSONNEL_VCT, DEFAULT_LEEWAY, DEFAULT_KB_MAX_AGE
        )
    except VerificationError as exc:
        return exc.reason
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_the_fast_path_and_the_explaining_path_refuse_the_same_inputs_for_the_same_reason(case: Case) -> None:
    presentation = _presentation(case)
    explained = _explained(presentation)

    signature_refused: Reason | None = None
    fast = None
    try:
        fast = check_fast(
            presentation, NODE.trust, "node-a", NOW, PERSONNEL_VCT, DEFAULT_LEEWAY, DEFAULT_KB_MAX_AGE
        )
    except VerificationError as exc:  # only a signature is refused on the fast path itself
        signature_refused = exc.reason
    if signature_refused is not None:
        assert signature_refused is explained
    elif fast is None:  # refused: the explaining path names why
        assert explained is not None
    else:
        assert explained is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases.filter(lambda c: c.audience == "node-a" and c.kb_issued_at in (NOW, NOW - 30, NOW + 30)))
def test_inspect_refuses_a_credential_for_the_reason_a_node_gives(case: Case) -> None:
    """With the issuer's bundle as trust, inspect makes the node's checks (all but the nonce and status).

    It refuses exactly what a node refuses. It runs the checks that need no trust
    (disclosures, the key binding) before the issuer's signature, so where those fail
    too it may name them first; otherwise it names the node's reason.
    """
    presentation = _presentation(case)
    trust = Trust(
        NOW,
        issuing=IssuingKeys({k.key.thumbprint: k.key for k in BUNDLE.issuing_keys}, "the JP bundle", BUNDLE),
    )

    report = inspect_artifact(io.BytesIO(presentation.encode()), trust)

    found = report.failure.reason if report.failure is not None else None
    explained = _explained(presentation)
    assert (found is None) == (explained is None)
    if not (case.drop_disclosure or case.kb_by_other_key):
        assert found is explained
