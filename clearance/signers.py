"""Opening a :class:`~clearance.keys.Signer` from how an operator names it.

A key is named by a file path (a PKCS#8 PEM written by clearance, mode 0600)
or by an RFC 7512 ``pkcs11:`` URI (:mod:`clearance.pkcs11`). Configuration and
command lines carry these names, never key material or PINs.
"""

from __future__ import annotations

from pathlib import Path

from clearance.keys import Signer, read_private_key
from clearance.pkcs11 import Pkcs11Signer
from clearance.pkcs11config import Pkcs11Config
from clearance.pkcs11uri import is_pkcs11_uri


def open_signer(name: str, pkcs11: Pkcs11Config | None = None) -> Signer:
    """The key ``name`` names: a ``pkcs11:`` URI or a private key file.

    Raises:
        KeyAccessError: a token key that cannot be used (see :class:`Pkcs11Signer`).
        StorageError: a key file that is missing, unreadable or readable by others.
        MalformedError: a key file that holds no supported key.
    """
    if is_pkcs11_uri(name):
        return Pkcs11Signer(name, pkcs11)
    return read_private_key(Path(name))
