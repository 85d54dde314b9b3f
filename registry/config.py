"""A registry's configuration: ``DIR/registry.toml``, written by ``clearance registry init``.

The directory holds everything a registry process needs besides its
database::

    DIR/registry.toml          this configuration
    DIR/keys/root.pem          root key (move it offline after init; see docs)
    DIR/keys/issuing-<kid>.pem issuing keys (online)
    DIR/keys/kek-<id>.key      key-encryption keys for personal data (never in the database)
    DIR/keys/pseudonym.key     secret for subject pseudonyms
    DIR/tls/ca.pem, server.pem, server-key.pem   TLS for a first run
    DIR/admin.json             the first administrator's credential (move it to the admin)
    DIR/registry.sqlite3       the embedded database when no URL is configured

Every value is validated on load; a bad file is refused with the key at fault.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.credentials import check_jurisdiction, check_token
from clearance.errors import InvalidArgumentError, MalformedError
from clearance.keys import atomic_write

CONFIG_NAME = "registry.toml"
DEFAULT_LEVELS = ("CONFIDENTIAL", "SECRET", "TOP_SECRET")
DEFAULT_CATEGORIES = (
    "cyber-threat",
    "regulatory-review",
    "industrial-strategy",
    "supply-chain",
    "joint-research",
)
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?")


@dataclass(frozen=True)
class RegistryConfig:
    """Validated registry settings. Durations are in seconds."""

    directory: Path
    jurisdiction: str
    issuer: str
    database_url: str
    levels: tuple[str, ...] = DEFAULT_LEVELS
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    clearance_validity: int = 10 * 365 * 86400 + 2 * 86400  # ten years, leap days included
    credential_lifetime: int = 365 * 86400
    bundle_lifetime: int = 7 * 86400
    status_list_size: int = 1 << 20
    status_list_lifetime: int = 2 * 86400
    status_freshness_interval: int = 300
    appeal_window: int = 60 * 86400
    endpoint: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_jurisdiction(self.jurisdiction)
            for level in self.levels:
                check_token(level, what="level")
            for category in self.categories:
                check_token(category, what="category")
        except MalformedError as exc:
            raise InvalidArgumentError("registry.toml", exc.detail) from exc
        if len(set(self.levels)) != len(self.levels) or not self.levels:
            raise InvalidArgumentError("levels", "levels must be distinct and not empty")
        if not _URL.fullmatch(self.issuer):
            raise InvalidArgumentError("issuer", "must be an http(s) URL such as https://registry.jp.example")
        if self.status_list_size < 131_072:
            raise InvalidArgumentError("status_list_size", "must be at least 131072 (herd privacy)")
        for name in (
            "clearance_validity",
            "credential_lifetime",
            "bundle_lifetime",
            "status_list_lifetime",
            "status_freshness_interval",
            "appeal_window",
        ):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise InvalidArgumentError(name, "must be a positive whole number")

    @property
    def keys_dir(self) -> Path:
        return self.directory / "keys"

    @property
    def tls_dir(self) -> Path:
        return self.directory / "tls"

    def status_list_uri(self, number: int) -> str:
        return f"{self.issuer.rstrip('/')}/statuslists/{number}"

    @staticmethod
    def default_database_url(directory: Path) -> str:
        return f"sqlite:///{(directory / 'registry.sqlite3').resolve()}"

    @classmethod
    def load(cls, directory: Path) -> RegistryConfig:
        """Read ``DIR/registry.toml``.

        Raises:
            InvalidArgumentError: missing file, bad TOML, or a bad value (named).
        """
        path = Path(directory) / CONFIG_NAME
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise InvalidArgumentError(
                "--dir",
                f"{directory} is not a registry directory (no {CONFIG_NAME}); run: clearance registry init",
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(str(path), f"not valid TOML: {exc}") from exc
        known = {f for f in cls.__dataclass_fields__ if f not in ("directory", "extra")}
        unknown = set(raw) - known
        if unknown:
            raise InvalidArgumentError(str(path), f"unknown settings: {sorted(unknown)}")
        for required in ("jurisdiction", "issuer", "database_url"):
            if not isinstance(raw.get(required), str):
                raise InvalidArgumentError(required, f"{path} must set {required} to a string")
        values: dict[str, Any] = dict(raw)
        for name in ("levels", "categories"):
            if name in values:
                if not isinstance(values[name], list):
                    raise InvalidArgumentError(name, "must be a list of strings")
                values[name] = tuple(values[name])
        return cls(directory=Path(directory), **values)

    def save(self) -> None:
        """Write ``DIR/registry.toml`` atomically."""
        lines = ["# clearance registry configuration (see docs/operations.md)"]
        for name in self.__dataclass_fields__:
            if name in ("directory", "extra"):
                continue
            value = getattr(self, name)
            lines.append(f"{name} = {_toml_value(value)}")
        atomic_write(self.directory / CONFIG_NAME, ("\n".join(lines) + "\n").encode(), mode=0o600)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
