"""Where a PKCS#11 key's module and PIN come from, when its URI does not say.

The PIN comes from the URI's ``pin-source`` (a file readable only by its
owner) or from an environment variable named in :class:`Pkcs11Config`, never
from a URI value or a command line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clearance.errors import KeyAccessCode, KeyAccessError
from clearance.pkcs11uri import Pkcs11Uri

DEFAULT_TIMEOUT = 30.0
"""Seconds a call waits for a PKCS#11 module another thread is using."""


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """Where modules and PINs come from when a URI does not say.

    Attributes:
        default_module: the module (shared library) for URIs without ``module-path``.
        pin_env: the name of an environment variable holding the PIN, for URIs
            without ``pin-source``.
        environ: the environment to read ``pin_env`` from (injected for tests).
        session_timeout: seconds a call waits for the module (see :class:`Pkcs11Module`).
    """

    default_module: str | None = None
    pin_env: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    session_timeout: float = DEFAULT_TIMEOUT

    def module_path(self, uri: Pkcs11Uri) -> str:
        """The module for ``uri``.

        Raises:
            KeyAccessError: ``module_unavailable``: none named and no default configured.
        """
        path = uri.module_path or self.default_module
        if not path:
            raise KeyAccessError(
                KeyAccessCode.MODULE_UNAVAILABLE,
                "no PKCS#11 module: add module-path to the URI or configure a default module",
            )
        return path

    def pin(self, uri: Pkcs11Uri) -> str:
        """The PIN for ``uri``: from its ``pin-source`` file, else from ``pin_env``.

        Raises:
            KeyAccessError: ``pin_unavailable``: no source, an unreadable file, a
                file others may read, or an unset variable.
        """
        if uri.pin_source is not None:
            return read_pin_file(_pin_path(uri.pin_source))
        if self.pin_env:
            value = self.environ.get(self.pin_env)
            if value is None:
                raise KeyAccessError(
                    KeyAccessCode.PIN_UNAVAILABLE, f"the environment variable {self.pin_env} is not set"
                )
            return value
        raise KeyAccessError(
            KeyAccessCode.PIN_UNAVAILABLE,
            "no PIN source: add pin-source=file:... to the URI or name an environment variable",
        )


def _pin_path(source: str) -> Path:
    if source.startswith("file://"):
        rest = source[len("file://") :]
        if not rest.startswith("/"):
            raise KeyAccessError(KeyAccessCode.MALFORMED_URI, "pin-source file URI must be file:///path")
        return Path(rest)
    if source.startswith("file:"):
        return Path(source[len("file:") :])
    if ":" in source.split("/", 1)[0]:
        raise KeyAccessError(KeyAccessCode.MALFORMED_URI, "pin-source must be a file: URI or a path")
    return Path(source)


def read_pin_file(path: Path) -> str:
    """Read a PIN file (one line), refusing a file that group or others may read.

    Raises:
        KeyAccessError: ``pin_unavailable``.
    """
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise KeyAccessError(
                KeyAccessCode.PIN_UNAVAILABLE, f"{path} is readable by others; run: chmod 600 {path}"
            )
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyAccessError(KeyAccessCode.PIN_UNAVAILABLE, f"cannot read the PIN file {path}") from exc
    return text.removesuffix("\n").removesuffix("\r")
