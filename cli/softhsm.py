"""Scratch SoftHSM2 tokens, for the PKCS#11 benchmark, trials and tests.

SoftHSM2 reads its configuration (``SOFTHSM2_CONF``) when the library is
initialized, so a scratch directory of tokens works in two steps: point
``SOFTHSM2_CONF`` at a configuration whose ``directories.tokendir`` is the
directory (:meth:`SoftHsm.environment`), then initialize tokens there with
``softhsm2-util`` and reload the module so this process sees them. The PINs
of scratch tokens are throwaway values written to a file readable only by its
owner; ``softhsm2-util`` gets them on its command line, which is acceptable
for a token that exists for one run and never for a real one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from clearance.errors import KeyAccessCode, KeyAccessError
from clearance.keys import atomic_write
from clearance.pkcs11 import Pkcs11Module
from clearance.pkcs11config import Pkcs11Config
from clearance.pkcs11uri import Pkcs11Uri

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


def find_softhsm() -> tuple[str, str]:
    """The SoftHSM2 module and ``softhsm2-util``.

    Raises:
        KeyAccessError: ``module_unavailable``: SoftHSM2 is not installed
            (Debian: ``apt-get install softhsm2``).
    """
    util = shutil.which("softhsm2-util")
    module = next((path for path in MODULE_CANDIDATES if os.path.isfile(path)), None)
    if util is None or module is None:
        raise KeyAccessError(
            KeyAccessCode.MODULE_UNAVAILABLE, "SoftHSM2 is not installed (Debian: apt-get install softhsm2)"
        )
    return module, util


@dataclass(frozen=True, slots=True)
class ScratchToken:
    """A token initialized in a scratch directory."""

    label: str
    serial: str
    pin_file: Path
    module_path: str

    def key_uri(self, label: str) -> Pkcs11Uri:
        """The URI of the key ``label`` in this token, with its module and PIN file."""
        return Pkcs11Uri(
            token=self.label,
            serial=self.serial,
            object=label,
            module_path=self.module_path,
            pin_source=f"file:{self.pin_file}",
        )


class SoftHsm:
    """A directory of SoftHSM2 tokens that exists for one run."""

    def __init__(self, directory: Path) -> None:
        """Prepare ``directory`` (its configuration and token directory).

        Raises:
            KeyAccessError: SoftHSM2 is not installed.
        """
        self.module_path, self._util = find_softhsm()
        self.directory = directory
        (directory / "tokens").mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "softhsm2.conf"
        atomic_write(
            self.config_path,
            (
                f"directories.tokendir = {directory / 'tokens'}\n"
                "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
            ).encode(),
        )

    def environment(self) -> dict[str, str]:
        """The variables SoftHSM2 must see (set them before the module is first used or reloaded)."""
        return {"SOFTHSM2_CONF": str(self.config_path)}

    @property
    def config(self) -> Pkcs11Config:
        """A configuration whose default module is SoftHSM2."""
        return Pkcs11Config(default_module=self.module_path)

    def init_token(self, label: str) -> ScratchToken:
        """Initialize a token ``label`` with a random PIN, and make this process see it.

        Raises:
            KeyAccessError: ``softhsm2-util`` failed, or this process does not use this
                directory's configuration.
        """
        if os.environ.get("SOFTHSM2_CONF") != str(self.config_path):
            raise KeyAccessError(
                KeyAccessCode.MODULE_UNAVAILABLE, "set SoftHsm.environment() before initializing tokens"
            )
        pin = secrets.token_hex(8)
        pin_file = self.directory / f"{label}.pin"
        atomic_write(pin_file, pin.encode(), mode=0o600)
        env = {**os.environ, **self.environment()}
        done = subprocess.run(  # noqa: S603  (fixed arguments)
            [
                self._util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                secrets.token_hex(8),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise KeyAccessError(
                KeyAccessCode.TOKEN_UNAVAILABLE, f"softhsm2-util failed: {done.stderr.strip()}"
            )
        module = Pkcs11Module.load(self.module_path)
        module.reload()
        with module.locked():
            token = module.find_token(Pkcs11Uri(token=label, object="-"))
        serial = token.serial.decode("ascii") if isinstance(token.serial, bytes) else str(token.serial)
        return ScratchToken(label, serial, pin_file, self.module_path)

    def delete_token(self, token: ScratchToken) -> None:
        """Delete ``token`` from the directory, as if it were pulled out (this process is not told).

        Raises:
            KeyAccessError: ``softhsm2-util`` failed.
        """
        env = {**os.environ, **self.environment()}
        done = subprocess.run(  # noqa: S603  (fixed arguments)
            [self._util, "--delete-token", "--serial", token.serial],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise KeyAccessError(
                KeyAccessCode.TOKEN_UNAVAILABLE, f"softhsm2-util failed: {done.stderr.strip()}"
            )
