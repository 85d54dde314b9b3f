"""Creating a registry (``clearance registry init``) and upgrading one (``registry migrate``).

Init is all or nothing: it refuses a directory that already holds a
registry, and if a step fails it removes what it created.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from clearance.errors import ConflictError, InvalidArgumentError
from clearance.keys import SigningKey, atomic_write
from clearance.tls import create_tls
from registry.config import CONFIG_NAME, RegistryConfig
from registry.context import RegistryContext, system_clock
from registry.policy import Role
from registry.publication import publisher
from registry.store import audit, schema, statuslists
from registry.store.columns import new_id
from registry.store.db import Database
from registry.store.keyring import KeyRing
from registry.store.models import Staff

ISSUING_KEY_LIFETIME = 2 * 365 * 86400


@dataclass(frozen=True)
class StaffCredential:
    """What a staff member (or the CLI acting for them) needs to call the registry."""

    endpoint: str
    audience: str
    principal: str
    role: str
    key: SigningKey
    ca_pem: str
    tls: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "kind": "clearance-staff-credential",
            "registry": self.endpoint,
            "audience": self.audience,
            "principal": self.principal,
            "role": self.role,
            "private_jwk": self.key.private_jwk(),
            "ca_pem": self.ca_pem,
            "tls": self.tls,
        }

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps(self.to_json(), indent=2).encode(), mode=0o600)


def init_registry(
    directory: Path,
    *,
    jurisdiction: str,
    database_url: str | None = None,
    issuer: str | None = None,
    endpoint: str = "127.0.0.1:7443",
    hosts: list[str] | None = None,
    clock: object = system_clock,
    **settings: object,
) -> tuple[RegistryContext, StaffCredential]:
    """Create everything a registry needs in ``directory``; return its context and the first admin.

    Raises:
        ConflictError: ``directory`` already holds a registry.
        InvalidArgumentError: bad jurisdiction, URL or settings.
    """
    directory = Path(directory)
    if (directory / CONFIG_NAME).exists():
        raise ConflictError(f"{directory} already holds a registry; use another --dir")
    if not isinstance(jurisdiction, str) or len(jurisdiction) != 2:
        raise InvalidArgumentError("--jurisdiction", "must be a two-letter ISO 3166 code such as JP")
    jurisdiction = jurisdiction.upper()
    created_dir = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # it holds keys, the configuration and the database: the owner's alone
    try:
        config = RegistryConfig(
            directory=directory,
            jurisdiction=jurisdiction,
            issuer=issuer or f"https://registry.{jurisdiction.lower()}.clearance.example",
            database_url=database_url or RegistryConfig.default_database_url(directory),
            endpoint=endpoint,
            **settings,  # type: ignore[arg-type]
        )
        keys = KeyRing.create(config.keys_dir)
        host = endpoint.rpartition(":")[0] or "localhost"
        tls_hosts = sorted({"localhost", "127.0.0.1", "::1", host.strip("[]"), *(hosts or [])})
        tls = create_tls(config.tls_dir, common_name=f"clearance registry {jurisdiction}", hosts=tls_hosts)
        config.keys_dir.chmod(0o700)
        config.tls_dir.chmod(0o700)
        db = Database.connect(config.database_url)
        schema.upgrade(db.engine)
        ctx = RegistryContext(config=config, db=db, keys=keys, clock=clock)  # type: ignore[arg-type]
        now = ctx.now()
        admin_key = SigningKey.generate()
        with db.transaction() as session:
            if publisher.current_bundle(session) is not None:
                raise ConflictError("the database already holds a registry; give a new --database-url")
            audit.ensure_head(session)
            publisher.register_issuing_key(
                session, keys.issuing_key.public, not_before=now - 300, not_after=now + ISSUING_KEY_LIFETIME
            )
            statuslists.create_list(
                session, uri=config.status_list_uri(1), size=config.status_list_size, now=now
            )
            admin = Staff(
                id=new_id("staff"),
                name="first administrator",
                role=Role.ADMINISTRATOR.value,
                organization_id=None,
                public_jwk=json.dumps(admin_key.public.jwk),
                key_thumbprint=admin_key.kid,
                disabled=False,
                created_at=now,
            )
            session.add(admin)
            session.flush()
            audit.append(
                session,
                at=now,
                actor="system",
                action="registry.init",
                object_type="registry",
                object_id=jurisdiction,
                details={"root": keys.root.kid if keys.root else None, "admin": admin.id},
            )
            publisher.publish_bundle(ctx, session, now=now, reason="first bundle")
        config.save()
        credential = StaffCredential(
            endpoint=endpoint,
            audience=config.issuer,
            principal=admin.id,
            role=Role.ADMINISTRATOR.value,
            key=admin_key,
            ca_pem=tls.ca.read_text(),
        )
        credential.save(directory / "admin.json")
        return ctx, credential
    except BaseException:
        # All or nothing: leave no half-made registry behind.
        if created_dir:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for name in (
                CONFIG_NAME,
                "keys",
                "tls",
                "admin.json",
                "registry.sqlite3",
                "registry.sqlite3-wal",
                "registry.sqlite3-shm",
            ):
                path = directory / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def migrate(directory: Path, database_url: str | None = None) -> tuple[str | None, str]:
    """Upgrade the database schema to this version's head; returns (before, after)."""
    config = RegistryConfig.load(directory)
    db = Database.connect(database_url or config.database_url)
    try:
        before = schema.current_revision(db.engine)
        schema.upgrade(db.engine)
        with db.transaction() as session:
            audit.ensure_head(session)
        return before, schema.head_revision()
    finally:
        db.dispose()
