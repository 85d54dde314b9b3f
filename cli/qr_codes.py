"""QR codes for URIs a person scans with a phone wallet (credential offers, presentation requests).

Printed in the terminal (two rows of modules per character line) and written as a PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

import segno

from clearance.keys import atomic_write


def terminal_qr(uri: str) -> str:
    """``uri`` as a QR code drawn with block characters, for a terminal."""
    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def write_qr_png(uri: str, path: Path, *, scale: int = 6) -> None:
    """Write ``uri`` as a QR code PNG (mode 0600: an offer is a secret until it is redeemed).

    Raises:
        StorageError: the file could not be written.
    """
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=scale, border=4)
    atomic_write(path, buffer.getvalue(), mode=0o600)
