"""Issuing personnel and facility credentials.

A personnel credential is issued only for a favorable, unexpired assessment
with consent in force, to a person affiliated with an organization that
holds an active facility clearance at least as high as the assessment (a
contractor cannot hold a higher clearance than its facility), bound to the
holder's public key. Its ``exp`` is the earlier of the credential lifetime
and the end of the clearance's validity. The SD-JWT handed to the holder
carries their name, birth date, nationalities and employer as selectively
disclosable claims; the registry keeps a sealed copy only to answer a
repeated request with the same idempotency key.

The modules, in the order a request meets them:

* :mod:`.eligibility`: what an assessment must be to be issued from, read in one query.
* :mod:`.allocation`: random, free status indices in the open list.
* :mod:`.records`: the requests, the planned and signed credentials, their rows.
* :mod:`.personnel`: one credential, written through the group-commit writer.
* :mod:`.bulk`: many credentials in one transaction, signed before it.
* :mod:`.facility`: an organization's credential, bound to its node's key.
"""
