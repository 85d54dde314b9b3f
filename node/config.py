"""A node's configuration: ``DIR/node.toml``, written by ``clearance node init``.

The directory holds everything a node process needs::

    DIR/node.toml          this configuration
    DIR/node-key.pem       the node's Ed25519 key (0600): signs its facility presentations
    DIR/local-token        the bearer token of the local API (0600)
    DIR/facility.sd-jwt    the organization's facility credential, bound to the node key (0600)
    DIR/registry-ca.pem    the CA of the registry's TLS certificate (absent for plaintext loopback)
    DIR/store.sqlite3      the pinned root and the synced trust material (see :mod:`node.store`)
    DIR/decisions.sqlite3  the hash-chained decision log (see :mod:`node.decision_log`)
    DIR/tls/               the peer API's TLS material, when it listens beyond loopback
    DIR/local-api.addr     written by the running node: the address its local API bound
    DIR/node.lock          held by the running node: one node process per directory
    DIR/peer-api.addr      likewise for the peer API

An example ``node.toml``::

    node_id = "node_5f3c2a9e1b7d40c8a6e2"
    organization_id = "org_0d1e2f3a4b5c6d7e8f90"
    organization_name = "Example KK"
    jurisdiction = "JP"
    registry = "registry.jp.example:7443"
    registry_insecure = false          # plaintext, only to a loopback registry
    root_fingerprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    listen = "127.0.0.1:7600"          # or "unix:/run/clearance/node.sock"; loopback only
    peer_listen = ""                   # the node-to-node API; empty: not served
    peer_insecure = false              # plaintext peer API, only on loopback
    poll_interval = 30                 # seconds between polls while the push stream is down
    max_backoff = 60                   # longest wait between reconnection attempts
    verify_threads = 0                 # threads checking a Verify batch; 0: one per core
    unsafe_clock_file = ""             # tests only; see node.clock

    [staleness]                        # oldest status list a decision may rest on, per level
    TOP_SECRET = 3600
    SECRET = 86400
    CONFIDENTIAL = 604800

Every value is validated on load, and a bad one is refused naming its key.

**Private files.** The directory is 0700 and every file in it that is not
public (all but ``registry-ca.pem`` and the TLS certificates) is 0600: the
configuration, the key, the token, the facility credential, both SQLite
stores (with their ``-wal`` and ``-shm`` files) and the TLS key.
:func:`check_private_files` refuses to start a node whose directory or
private files others may read, naming the file and the ``chmod`` that fixes
it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from clearance.credentials import check_jurisdiction, check_token
from clearance.errors import InvalidArgumentError, MalformedError, StorageError
from clearance.keys import atomic_write
from clearance.verify import StalenessPolicy

CONFIG_NAME = "node.toml"
KEY_NAME = "node-key.pem"
TOKEN_NAME = "local-token"  # noqa: S105 - a file name, not a secret
FACILITY_NAME = "facility.sd-jwt"
REGISTRY_CA_NAME = "registry-ca.pem"
STORE_NAME = "store.sqlite3"
DECISIONS_NAME = "decisions.sqlite3"
TLS_DIR = "tls"
MAX_VERIFY_THREADS = 64
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")
TLS_KEY_NAME = f"{TLS_DIR}/server-key.pem"
PRIVATE_NAMES = (
    CONFIG_NAME,
    KEY_NAME,
    TOKEN_NAME,
    FACILITY_NAME,
    STORE_NAME,
    f"{STORE_NAME}-wal",
    f"{STORE_NAME}-shm",
    DECISIONS_NAME,
    f"{DECISIONS_NAME}-wal",
    f"{DECISIONS_NAME}-shm",
    TLS_KEY_NAME,
)
"""Files of a node directory that only the node's user may read (0600), when they exist."""
LOCAL_ADDR = "local-api.addr"
"""Written by the running node: the local API address it bound."""
PEER_ADDR = "peer-api.addr"


def read_secret(path: Path) -> str:
    """A secret file's content, refusing one that others may read.

    Raises:
        StorageError: missing, unreadable, empty or readable by others.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise StorageError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        text = path.read_text("utf-8").strip()
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
    if not text:
        raise StorageError(f"{path} is empty")
    return text


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (so that SQLite, which gives its
    ``-wal`` and ``-shm`` files the database's mode, never makes a readable one).

    Raises:
        StorageError: it cannot be created.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror}") from exc


def check_private_files(directory: Path) -> None:
    """Refuse a node directory that others may enter, or private files that others may read.

    Raises:
        StorageError: names the directory or the first such file, and the command that fixes it.
    """
    directory = Path(directory)
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            raise StorageError(
                f"{directory} is open to others (mode {mode:o}); it holds the node's secrets: "
                f"run: chmod 700 {directory}"
            )
        for name in PRIVATE_NAMES:
            path = directory / name
            if not path.exists():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise StorageError(
                    f"{path} is readable by others (mode {mode:o}); it is private: run: chmod 600 {path}"
                )
    except OSError as exc:
        raise StorageError(f"cannot check {directory}: {exc.strerror}") from exc


def is_loopback_host(host: str) -> bool:
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def check_endpoint(value: Any, key: str, *, allow_unix: bool = False) -> str:
    """A ``HOST:PORT`` (or ``unix:PATH`` where allowed).

    Raises:
        InvalidArgumentError: anything else, naming ``key``.
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(key, "must be HOST:PORT")
    if value.startswith("unix:"):
        if allow_unix and len(value) > len("unix:"):
            return value
        raise InvalidArgumentError(key, "a Unix socket is not allowed here")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidArgumentError(key, f"{value!r} is not HOST:PORT")
    return value


def check_local_listen(value: Any, key: str = "listen") -> str:
    """The local API's address: loopback TCP or a Unix socket, never a public interface.

    Raises:
        InvalidArgumentError: any other address.
    """
    address = check_endpoint(value, key, allow_unix=True)
    if not address.startswith("unix:") and not is_loopback_host(address.rpartition(":")[0]):
        raise InvalidArgumentError(key, "the local API listens on loopback or a Unix socket only")
    return address


@dataclass(frozen=True)
class NodeConfig:
    """Validated node settings; durations in seconds."""

    directory: Path
    node_id: str
    organization_id: str
    jurisdiction: str
    registry: str
    root_fingerprint: str
    organization_name: str = ""
    registry_insecure: bool = False
    listen: str = "127.0.0.1:7600"
    peer_listen: str = ""
    peer_insecure: bool = False
    poll_interval: int = 30
    max_backoff: int = 60
    verify_threads: int = 0
    unsafe_clock_file: str = ""
    staleness: dict[str, int] = field(default_factory=lambda: dict(StalenessPolicy.DEFAULTS))

    def __post_init__(self) -> None:
        if not isinstance(self.root_fingerprint, str) or not _THUMBPRINT.fullmatch(self.root_fingerprint):
            raise InvalidArgumentError(
                "root_fingerprint", "must be an RFC 7638 thumbprint: 43 base64url characters"
            )
        for key in ("node_id", "organization_id"):
            value = getattr(self, key)
            try:
                check_token(value, what=key)
            except MalformedError as exc:
                raise InvalidArgumentError(key, exc.detail) from None
        try:
            check_jurisdiction(self.jurisdiction)
        except MalformedError as exc:
            raise InvalidArgumentError("jurisdiction", exc.detail) from None
        check_endpoint(self.registry, "registry")
        if self.registry_insecure and not is_loopback_host(self.registry.rpartition(":")[0]):
            raise InvalidArgumentError(
                "registry_insecure", "plaintext is allowed only to a loopback registry"
            )
        check_local_listen(self.listen)
        if self.peer_listen:
            check_endpoint(self.peer_listen, "peer_listen")
            if self.peer_insecure and not is_loopback_host(self.peer_listen.rpartition(":")[0]):
                raise InvalidArgumentError(
                    "peer_insecure", "a plaintext peer API is allowed on loopback only"
                )
        for key in ("registry_insecure", "peer_insecure"):
            if type(getattr(self, key)) is not bool:
                raise InvalidArgumentError(key, "must be true or false")
        for key in ("poll_interval", "max_backoff"):
            value = getattr(self, key)
            if type(value) is not int or not 1 <= value <= 86400:
                raise InvalidArgumentError(key, "must be a whole number of seconds between 1 and 86400")
        if type(self.verify_threads) is not int or not 0 <= self.verify_threads <= MAX_VERIFY_THREADS:
            raise InvalidArgumentError(
                "verify_threads", f"must be a whole number from 0 (one per core) to {MAX_VERIFY_THREADS}"
            )
        if not isinstance(self.organization_name, str) or not isinstance(self.unsafe_clock_file, str):
            raise InvalidArgumentError("organization_name", "must be a string")
        if not isinstance(self.staleness, dict) or not self.staleness:
            raise InvalidArgumentError("staleness", "must be a table of level = seconds")
        for level, age in self.staleness.items():
            if type(age) is not int or age <= 0:
                raise InvalidArgumentError(f"staleness.{level}", "must be a positive whole number of seconds")
            try:
                check_token(level, what="level")
            except MalformedError as exc:
                raise InvalidArgumentError(f"staleness.{level}", exc.detail) from None

    # -- derived -------------------------------------------------------------

    @property
    def audience(self) -> str:
        """What presentations to this node must name as ``aud``: its node id."""
        return self.node_id

    @property
    def threads_for_verify(self) -> int:
        """How many threads check a Verify batch: ``verify_threads``, or one per core."""
        return self.verify_threads or default_verify_threads()

    @property
    def policy(self) -> StalenessPolicy:
        return StalenessPolicy(self.staleness)

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def clock_path(self) -> Path | None:
        if not self.unsafe_clock_file:
            return None
        return self.directory / self.unsafe_clock_file

    # -- file ----------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path) -> NodeConfig:
        """Read and validate ``DIR/node.toml``.

        Raises:
            InvalidArgumentError: no such file, bad TOML, an unknown key, or a bad
                value (the error names the key).
        """
        path = Path(directory) / CONFIG_NAME
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise InvalidArgumentError(
                "--dir", f"{directory} is not a node directory (no {CONFIG_NAME}); run: clearance node init"
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(str(path), f"not valid TOML: {exc}") from exc
        known = {f.name for f in fields(cls)} - {"directory"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidArgumentError(unknown[0], f"unknown setting in {path}")
        for required in ("node_id", "organization_id", "jurisdiction", "registry", "root_fingerprint"):
            if required not in raw:
                raise InvalidArgumentError(required, f"{path} must set it")
        return cls(directory=Path(directory), **raw)

    def save(self) -> None:
        """Write ``DIR/node.toml`` atomically (0600)."""
        lines = ["# clearance node configuration (see node/config.py for every key)"]
        for f in fields(self):
            if f.name in ("directory", "staleness"):
                continue
            lines.append(f"{f.name} = {_toml_value(getattr(self, f.name))}")
        lines.append("")
        lines.append("[staleness]")
        lines.extend(f"{json.dumps(level)} = {age}" for level, age in self.staleness.items())
        atomic_write(self.directory / CONFIG_NAME, ("\n".join(lines) + "\n").encode(), mode=0o600)


def default_verify_threads() -> int:
    """One verification thread per core (``verify_threads = 0``)."""
    return min(os.cpu_count() or 1, MAX_VERIFY_THREADS)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
