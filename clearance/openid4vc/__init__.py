"""OpenID for Verifiable Credentials: issuance (OpenID4VCI 1.0) and presentation (OpenID4VP 1.0).

The protocol core shared by the registry (issuer) and the node (verifier), and used by our
wallet (holder). Storage is behind small interfaces that each side implements; the
``*_memory`` modules are in-process references of those interfaces.

Issuer side:

* :mod:`.offers`: credential offers, pre-authorized codes and transaction codes;
* :mod:`.issuer_metadata`: credential issuer and authorization server metadata, the paths;
* :mod:`.proofs`: ``c_nonce`` values and ``openid4vci-proof+jwt`` proofs of possession;
* :mod:`.issuance`: the token, nonce, credential and offer endpoints (a Starlette app) over
  an :class:`~.issuance.IssuanceBackend`; :mod:`.issuance_memory`.

Verifier side:

* :mod:`.dcql`: DCQL queries derived from what a decision needs, and their answers;
* :mod:`.request_objects`: signed authorization requests (JAR) with ``x509_hash`` client ids;
* :mod:`.presentation`: the ``request_uri`` and ``direct_post`` endpoints (a Starlette app)
  over a :class:`~.presentation.PresentationBackend`; :mod:`.presentation_memory`.

Holder side: :mod:`.holder_http` (the wallet's HTTPS client), :mod:`.holder_issuance`,
:mod:`.holder_presentation`. Both apps share :mod:`.edge` (bounded bodies, error responses).
"""
