"""The hash chain of a registry's audit log, as the registry writes it and an overseer re-checks it.

Each event's hash covers its content and the previous event's hash::

    hash_n = SHA-256(canonical JSON of {seq, at, actor, action, object_type,
                     object_id, details, prev_hash = hash_(n-1)})

with ``hash_0`` = :data:`GENESIS`. The registry appends with it
(:mod:`registry.store.audit`); the oversight monitor recomputes it for every
event it reads, so a registry cannot hand out events that are not the ones it
chained.
"""

from __future__ import annotations

import hashlib

from clearance.encoding import canonical_json

GENESIS = "0" * 64


def event_hash(
    *,
    seq: int,
    at: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: str,
    prev_hash: str,
) -> str:
    """The hash of one event; ``details`` is the canonical JSON text the registry stored."""
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()
