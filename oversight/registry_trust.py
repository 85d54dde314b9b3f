"""The registry's trust bundle as the overseer trusts it: through the root it pinned, never the registry's word.

At its first run the monitor pins the registry's root by fingerprint (given
out of band, as a node's operator does); it keeps the root's key and, at
every run, follows the registry's root rotations from it (each signed by the
root before) and checks the current bundle against the root it reaches. The
bundle names the issuing keys that may sign a monthly report, and the
jurisdiction's levels, lowest first.
"""

from __future__ import annotations

import hmac
import json

from clearance.bundle import RootRotation, TrustBundle
from clearance.client.publication import Publication
from clearance.encoding import parse_json
from clearance.errors import Reason, VerificationError
from clearance.keys import PublicKey
from clearance.trust import TrustStore


def pin_root(publication: Publication, fingerprint: str) -> PublicKey:
    """The registry's current root, if its fingerprint is the one given.

    Raises:
        VerificationError: ``root_mismatch``.
        MalformedError: the registry's root is not a key.
    """
    root = PublicKey.from_jwk(parse_json(publication.root_history().root_jwk, what="registry root JWK"))
    if not hmac.compare_digest(root.thumbprint.encode(), fingerprint.encode()):
        raise VerificationError(
            Reason.ROOT_MISMATCH, f"the registry's root {root.thumbprint} is not the pinned {fingerprint}"
        )
    return root


def trusted_bundle(publication: Publication, root: PublicKey, now: int) -> tuple[TrustBundle, PublicKey]:
    """The registry's bundle, verified from ``root`` through the rotations since; and the root reached.

    Raises:
        VerificationError: a rotation or the bundle does not verify, or the bundle is stale.
        MalformedError: a document cannot be parsed.
    """
    trust = TrustStore(root)
    for document in publication.root_history().rotations:
        rotation = RootRotation.parse(parse_json(document, what="root rotation", max_bytes=64 * 1024))
        if rotation.previous == trust.root.thumbprint and rotation.new_root != trust.root:
            trust.update_root(rotation)
    bundle = trust.update_bundle(publication.trust_bundle(), now)
    return bundle, trust.root


def root_jwk(root: PublicKey) -> str:
    return json.dumps(root.jwk, sort_keys=True)
