"""What ``clearance node status`` reports: what the node trusts, how fresh it is, what is wrong.

:func:`describe` reads a trust store snapshot, the sync status and the
recorded problems, and says, at ``now``: the home registry (issuer, root
fingerprint, bundle version and expiry), the partners trusted through
agreements, each status list's age against the staleness policy (for which
levels it is still fresh enough), the last sync, and the problems pending:
current conditions (no bundle, bundle expired or expiring, a list stale or
missing, the registry unreachable) followed by the latest refusals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from clearance.trust import TrustStore
from clearance.verify import StalenessPolicy
from node.store import Problem
from node.sync import SyncStatus

RECENT_PROBLEMS = 10
RECENT_WINDOW = 86_400
"""Refusals older than this are history, not pending problems."""
EXPIRY_WARNING = 86_400


@dataclass(frozen=True)
class TrustedRegistry:
    jurisdiction: str
    issuer: str
    root_fingerprint: str
    bundle_version: int
    bundle_expires_at: int
    agreement_id: str = ""


@dataclass(frozen=True)
class ListFreshness:
    uri: str
    issued_at: int
    age_seconds: int
    sequence: int


@dataclass(frozen=True)
class NodeStatus:
    home: TrustedRegistry | None
    foreign: list[TrustedRegistry]
    status_lists: list[ListFreshness]
    last_sync: int | None
    connected: bool
    problems: list[str]
    staleness_policy: dict[str, int] = field(default_factory=dict)


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def describe(
    trust: TrustStore,
    sync: SyncStatus,
    recent: list[Problem],
    policy: StalenessPolicy,
    now: int,
) -> NodeStatus:
    """The node's status at ``now``."""
    problems: list[str] = []
    home: TrustedRegistry | None = None
    if trust.home is None:
        problems.append("no trust bundle: the node cannot decide until it syncs")
    else:
        bundle = trust.home
        home = TrustedRegistry(
            bundle.jurisdiction, bundle.issuer, trust.root.thumbprint, bundle.version, bundle.expires_at
        )
        if bundle.expires_at <= now:
            problems.append(
                f"trust bundle v{bundle.version} expired at {_when(bundle.expires_at)}: refusing to decide"
            )
        elif bundle.expires_at - now < EXPIRY_WARNING:
            problems.append(f"trust bundle v{bundle.version} expires at {_when(bundle.expires_at)}")
    foreign = [
        TrustedRegistry(
            j, f.bundle.issuer, f.root.thumbprint, f.bundle.version, f.bundle.expires_at, f.agreement.id
        )
        for j, f in sorted(trust.foreign.items())
    ]
    for partner in foreign:
        if partner.bundle_expires_at <= now:
            problems.append(f"{partner.jurisdiction} trust bundle expired: its people cannot be decided on")
    lists: list[ListFreshness] = []
    ages = policy.to_json()
    for uri, token in sorted(trust.status_lists.items()):
        age = now - token.issued_at
        lists.append(ListFreshness(uri, token.issued_at, age, token.seq))
        if token.expires_at is not None and token.expires_at <= now:
            problems.append(f"status list {uri} expired: every decision on it is refused")
            continue
        stale = sorted(level for level, limit in ages.items() if age > limit)
        if stale:
            problems.append(f"status list {uri} is {age}s old: too stale for {', '.join(stale)}")
    bundles = ([trust.home] if trust.home else []) + [f.bundle for f in trust.foreign.values()]
    for bundle in bundles:
        for location in bundle.status_lists:
            if location.uri not in trust.status_lists:
                problems.append(f"status list {location.uri} is not synced yet")
    if not sync.connected:
        since = f" since {_when(sync.last_sync)}" if sync.last_sync else ""
        problems.append(f"not connected to the registry{since}: deciding from the local store")
    for problem in recent[:RECENT_PROBLEMS]:
        if now - problem.at <= RECENT_WINDOW:
            problems.append(f"{_when(problem.at)} {problem}")
    return NodeStatus(home, foreign, lists, sync.last_sync, sync.connected, problems, ages)
