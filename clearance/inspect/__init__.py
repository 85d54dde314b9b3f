"""Decode any clearance artifact and, given trust material, verify it (what ``clearance inspect`` shows).

The kind is recognized from the content, never from the file name:

=================================  ===========================================
input                              kind
=================================  ===========================================
``<jwt>~<disclosure>~...~``        ``personnel_credential`` / ``facility_credential``
``<jwt>~<disclosure>~...~<kb>``    ``presentation`` (SD-JWT with a key-binding JWT)
compact JWS ``statuslist+jwt``     ``status_list_token``
compact JWS ``clearance-status-delta+jwt``  ``status_delta``
compact JWS ``clearance-bundle+jwt``  ``trust_bundle``
compact JWS ``clearance-visit+jwt``   ``visit_assurance``
JSON ``{"bits", "lst"}``           ``status_list`` (bare, unsigned)
JWS JSON ``clearance-agreement+jws``  ``agreement``
JWS JSON ``clearance-root+jws``    ``root_rotation``
=================================  ===========================================

Checks come in two layers:

* **Self-contained** checks need no trust root and always run: strict
  encoding, size caps, the algorithm allow-list, status list inflation,
  disclosures against their digests, the key-binding JWT against the
  credential's own ``cnf.jwk``, and signatures by keys the artifact names
  itself (an agreement's parties, a bundle's header key, a rotation's new
  root). Failing one means the artifact can never be valid: it is refused
  (exit 3) whether or not trust material was given.
* **Anchored** checks run when ``--root`` or ``--jwks`` is given: the
  signature by a key the user trusts, and validity at ``--at``. Trust
  material that cannot vouch for the artifact (``--jwks`` for a bundle, any
  key for a bare list, which is unsigned) refuses rather than passes.

Never checked here: a presentation's nonce (only the verifier that issued it
can tell whether it is fresh), a credential's status (inspect its list), and
whether a visit assurance names the person presenting it and this host (only
the host node, holding the visitor's presentation, can tell).

Heavy modules (the trust core pulls in cryptography) are imported inside the
functions that need them, so ``clearance --help`` stays fast. The credential
checks are those of :mod:`clearance.checks`, the list every verifier uses.
"""

from clearance.inspect.artifacts import MAX_INPUT_BYTES, detect, inspect_artifact, read_artifact
from clearance.inspect.report import Inspector, Report
from clearance.inspect.trust import IssuingKeys, Trust, TrustedRoot, load_trust

__all__ = [
    "MAX_INPUT_BYTES",
    "Inspector",
    "IssuingKeys",
    "Report",
    "Trust",
    "TrustedRoot",
    "detect",
    "inspect_artifact",
    "load_trust",
    "read_artifact",
]
