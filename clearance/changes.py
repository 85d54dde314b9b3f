"""What a document to be signed says, and what changed since the last one, in words.

Two uses, one set of rules:

* the online side writes a signing request's summary with
  :func:`summarize_bundle_change`, :func:`summarize_root_change` and
  :func:`summarize_agreement`;
* the offline side decodes the payload itself (:func:`describe_payload`) and,
  given the previous document from its own media, computes the same summary,
  so a person compares what the payload says with what they were told.

Every value shown is computed from the payload; nothing is copied from the
request's summary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from clearance.agreement import Agreement, ThresholdAgreement
from clearance.bundle import TrustBundle
from clearance.errors import MalformedError, VerificationError
from clearance.rootdoc import RootDocument

Rows = list[tuple[str, str]]


def when(seconds: int) -> str:
    """A UTC time as people read it on a ceremony screen."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _agreement_label(raw: Mapping[str, Any], home: str) -> tuple[str, str]:
    """``(id, counterpart)`` of an agreement a bundle lists, either schema."""
    try:
        agreement: Agreement | ThresholdAgreement = Agreement.parse(raw)
    except (MalformedError, VerificationError):
        agreement = ThresholdAgreement.parse(raw)
    try:
        counterpart = agreement.counterpart(home).jurisdiction
    except VerificationError:
        counterpart = "?"
    return agreement.id, counterpart


def _agreements(bundle: TrustBundle) -> dict[str, str]:
    return dict(_agreement_label(raw, bundle.jurisdiction) for raw in bundle.agreements)


def summarize_bundle_change(old: TrustBundle | None, new: TrustBundle) -> list[str]:
    """What ``new`` changes against ``old`` (the last signed bundle), one fact a line.

    Raises:
        MalformedError: a bundle lists an agreement that does not parse.
    """
    lines = [
        f"trust bundle v{new.version} for {new.jurisdiction}"
        + (f" (replaces v{old.version})" if old is not None else " (first)")
    ]
    old_keys = {k.key.thumbprint: k for k in old.issuing_keys} if old else {}
    new_keys = {k.key.thumbprint: k for k in new.issuing_keys}
    for kid, entry in new_keys.items():
        window = f"valid from {when(entry.not_before)} to {when(entry.not_after)}"
        if kid not in old_keys:
            lines.append(f"adds issuing key {kid} ({entry.key.alg}) {window}")
        elif (old_keys[kid].not_before, old_keys[kid].not_after) != (entry.not_before, entry.not_after):
            lines.append(f"changes issuing key {kid}: now {window}")
    lines += [f"removes issuing key {kid}" for kid in old_keys if kid not in new_keys]
    old_lists = {s.uri for s in old.status_lists} if old else set()
    new_lists = {s.uri for s in new.status_lists}
    lines += [f"adds status list {uri}" for uri in sorted(new_lists - old_lists)]
    lines += [f"removes status list {uri}" for uri in sorted(old_lists - new_lists)]
    old_agreements = _agreements(old) if old else {}
    new_agreements = _agreements(new)
    lines += [f"adds agreement {i} with {c}" for i, c in new_agreements.items() if i not in old_agreements]
    lines += [f"agreement {i} with {c} ends" for i, c in old_agreements.items() if i not in new_agreements]
    if old is None or old.levels != new.levels:
        lines.append("levels (lowest first): " + ", ".join(new.levels))
    if old is None or old.categories != new.categories:
        lines.append("categories: " + (", ".join(new.categories) or "(none)"))
    if old is not None and old.root != new.root:
        lines.append(f"now names root {new.root} (was {old.root})")
    lines.append(f"expires {when(new.expires_at)}")
    return lines


def summarize_root_change(old: RootDocument | None, new: RootDocument) -> list[str]:
    """What root document ``new`` changes against ``old``, one fact a line."""
    lines = [f"root document v{new.version} for {new.jurisdiction}, fingerprint {new.fingerprint}"]
    old_kids = {k.thumbprint for k in old.keys} if old else set()
    new_kids = [k.thumbprint for k in new.keys]
    lines += [f"adds root key {kid}" for kid in new_kids if kid not in old_kids]
    lines += [f"removes root key {kid}" for kid in sorted(old_kids - set(new_kids))]
    rule = f"{new.threshold} of {len(new.keys)}"
    if old is None:
        lines.append(f"signatures required: {rule}")
    elif (old.threshold, len(old.keys)) != (new.threshold, len(new.keys)):
        lines.append(f"signatures required: {rule} (was {old.threshold} of {len(old.keys)})")
    if old is not None:
        lines.append(
            f"to be signed by {old.threshold} of the {len(old.keys)} keys of v{old.version} "
            f"and {new.threshold} of its own {len(new.keys)}"
        )
    return lines


def summarize_agreement(agreement: ThresholdAgreement) -> list[str]:
    """The terms of an agreement, one fact a line."""
    a, b = agreement.parties
    lines = [
        f"agreement {agreement.id} between {a.jurisdiction} and {b.jurisdiction}",
        f"in force from {when(agreement.not_before)} to {when(agreement.expires_at)}",
    ]
    for party in agreement.parties:
        lines.append(
            f"{party.jurisdiction}: issuer {party.issuer}, root v{party.root.version} {party.root.fingerprint} "
            f"({party.root.threshold} of {len(party.root.keys)})"
        )
    lines += [f"level {a.jurisdiction} {x} = {b.jurisdiction} {y}" for x, y in agreement.levels]
    for jurisdiction, values in agreement.categories.items():
        lines.append(f"{jurisdiction} opens categories: " + (", ".join(values) or "(none)"))
    return lines


def describe_payload(kind: str, payload: Mapping[str, Any]) -> Rows:
    """The essential fields of a payload to sign, decoded here (never taken from a summary).

    Raises:
        MalformedError: the payload is not a document of ``kind``.
    """
    if kind == "bundle":
        bundle = TrustBundle.from_payload(payload)
        rows: Rows = [
            ("document", f"trust bundle v{bundle.version}"),
            ("jurisdiction", bundle.jurisdiction),
            ("issuer", bundle.issuer),
            ("root document", bundle.root),
            ("issued", when(bundle.issued_at)),
            ("expires", when(bundle.expires_at)),
            ("levels", ", ".join(bundle.levels)),
            ("categories", ", ".join(bundle.categories) or "(none)"),
        ]
        rows += [
            ("issuing key", f"{k.key.thumbprint} {k.key.alg} {when(k.not_before)} .. {when(k.not_after)}")
            for k in bundle.issuing_keys
        ]
        rows += [("status list", f"{s.uri} ({s.bits} bits)") for s in bundle.status_lists]
        rows += [("agreement", f"{i} with {c}") for i, c in _agreements(bundle).items()]
        return rows
    if kind == "agreement":
        agreement = ThresholdAgreement.from_payload(payload)
        return [("agreement", line) for line in summarize_agreement(agreement)]
    if kind == "root":
        root = RootDocument.from_payload(payload)
        rows = [
            ("document", f"root document v{root.version}"),
            ("jurisdiction", root.jurisdiction),
            ("fingerprint", root.fingerprint),
            ("issued", when(root.issued_at)),
            ("signatures required", f"{root.threshold} of {len(root.keys)}"),
        ]
        rows += [("key", f"{k.thumbprint} {k.alg}") for k in root.keys]
        return rows
    raise MalformedError(f"unknown kind {kind[:20]!r}")
