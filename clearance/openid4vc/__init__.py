"""OpenID for Verifiable Credentials: issuance (OpenID4VCI 1.0) and presentation (OpenID4VP 1.0).

The protocol core shared by the registry (issuer) and the node (verifier), and used by our
wallet (holder). Storage is behind small interfaces that each side implements:

* :mod:`.offers`: credential offers, pre-authorized codes and transaction codes;
* :mod:`.issuer_metadata`: credential issuer and authorization server metadata;
* :mod:`.proofs`: ``c_nonce`` values and ``openid4vci-proof+jwt`` proofs of possession;
* :mod:`.issuance`: the issuer's token, nonce and credential endpoints (a Starlette app) over
  an :class:`~.issuance.IssuanceBackend`;
* :mod:`.dcql`: DCQL queries derived from what a decision needs, and their answers;
* :mod:`.request_objects`: signed authorization requests (JAR) with ``x509_hash`` client ids;
* :mod:`.presentation`: the verifier's request and ``direct_post`` response endpoints (a
  Starlette app) over a :class:`~.presentation.PresentationBackend`;
* :mod:`.holder`: the wallet side of both protocols.
"""
