"""clearance: the trust core shared by the registry and the node.

Formats (SD-JWT VC credentials, Token Status Lists, trust bundles,
agreements), keys, and offline verification. Nothing here performs I/O except
the explicit key-file helpers in :mod:`clearance.keys`.
"""

__version__ = "0.1.0"
