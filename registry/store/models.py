"""The registry's tables (SQLAlchemy 2 typed models).

Personal data exists in exactly one column, ``people.personal_data``, and
there only as AES-GCM ciphertext under a per-person data key that is itself
wrapped by a key-encryption key kept outside the database
(:mod:`registry.envelope`). Everything else refers to people by id or by
their pseudonymous subject.

Times are integer seconds since the epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[int] = mapped_column(BigInteger)
    facility_level: Mapped[str | None] = mapped_column(String(64))
    facility_categories: Mapped[str | None] = mapped_column(Text)  # JSON array
    facility_valid_until: Mapped[int | None] = mapped_column(BigInteger)
    facility_active: Mapped[bool] = mapped_column(Boolean, default=False)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"))
    public_jwk: Mapped[str] = mapped_column(Text)
    key_thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    node_id: Mapped[str | None] = mapped_column(String(40))


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200))
    public_jwk: Mapped[str] = mapped_column(Text)
    key_thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    enrolled_at: Mapped[int] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    enrolled_at: Mapped[int] = mapped_column(BigInteger)
    personal_data: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM ciphertext
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)  # data key under the KEK
    kek_id: Mapped[str] = mapped_column(String(40))


class Assessment(Base):
    __tablename__ = "assessments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[str] = mapped_column(String(64))
    categories: Mapped[str] = mapped_column(Text)  # JSON array
    opened_at: Mapped[int] = mapped_column(BigInteger)
    opened_by: Mapped[str] = mapped_column(String(40))
    consent_at: Mapped[int | None] = mapped_column(BigInteger)
    consent_evidence: Mapped[str | None] = mapped_column(Text)
    consent_by: Mapped[str | None] = mapped_column(String(40))
    withdrawn_at: Mapped[int | None] = mapped_column(BigInteger)
    decision: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[str | None] = mapped_column(Text)  # JSON array
    decided_at: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[int | None] = mapped_column(BigInteger)
    approved_by: Mapped[str | None] = mapped_column(String(40))  # the second adjudicator (Top Secret)
    valid_until: Mapped[int | None] = mapped_column(BigInteger)


class Finding(Base):
    __tablename__ = "findings"
    __table_args__ = (UniqueConstraint("assessment_id", "item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"))
    item: Mapped[str] = mapped_column(String(48))
    outcome: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(40))


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text)  # JSON array
    appeal_instructions: Mapped[str] = mapped_column(Text)
    appeal_deadline: Mapped[int | None] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)


class Appeal(Base):
    __tablename__ = "appeals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    assessment_id: Mapped[str] = mapped_column(ForeignKey("assessments.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    grounds: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[int] = mapped_column(BigInteger)
    filed_by: Mapped[str] = mapped_column(String(40))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(40))


class StatusListRow(Base):
    """One status list: its state lives in chunks, its history in changes."""

    __tablename__ = "status_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uri: Mapped[str] = mapped_column(String(300), unique=True)
    bits: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    allocated: Mapped[int] = mapped_column(BigInteger, default=0)
    full_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    full_token: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[int] = mapped_column(BigInteger, default=0)


class StatusListChunk(Base):
    """A fixed-size slice of a status list's bytes, so one change rewrites one chunk."""

    __tablename__ = "status_list_chunks"

    list_id: Mapped[int] = mapped_column(ForeignKey("status_lists.id"), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class StatusChange(Base):
    """Publication ``seq`` of a list: the signed delta that produced it."""

    __tablename__ = "status_changes"

    list_id: Mapped[int] = mapped_column(ForeignKey("status_lists.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[int] = mapped_column(BigInteger)


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("status_list_id", "status_index"),
        Index("ix_credentials_org_state", "organization_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # personnel | facility
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), index=True)
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organizations.id"))
    assessment_id: Mapped[str | None] = mapped_column(ForeignKey("assessments.id"))
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id"))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    level: Mapped[str] = mapped_column(String(64))
    categories: Mapped[str] = mapped_column(Text)  # JSON array
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(Text)
    status_list_id: Mapped[int] = mapped_column(ForeignKey("status_lists.id"))
    status_index: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    holder_thumbprint: Mapped[str] = mapped_column(String(64))
    issuing_kid: Mapped[str] = mapped_column(String(64))
    suspended_by: Mapped[str | None] = mapped_column(
        String(32)
    )  # what suspended it: staff, consent, affiliation, facility
    sealed_sd_jwt: Mapped[bytes | None] = mapped_column(LargeBinary)  # encrypted: it carries disclosures


@dataclass(slots=True)
class CredentialRecord:
    """A credential row as plain data: what issuance builds and inserts without ORM overhead."""

    id: str
    kind: str
    person_id: str | None
    organization_id: str | None
    assessment_id: str | None
    node_id: str | None
    jurisdiction: str
    level: str
    categories: str
    state: str
    state_reason: str | None
    status_list_id: int
    status_index: int
    issued_at: int
    expires_at: int
    holder_thumbprint: str
    issuing_kid: str
    suspended_by: str | None
    sealed_sd_jwt: bytes | None

    def row(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(CredentialRecord))
CredentialLike = Credential | CredentialRecord


class TrustBundleRow(Base):
    __tablename__ = "trust_bundles"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class IssuingKeyRow(Base):
    __tablename__ = "issuing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_jwk: Mapped[str] = mapped_column(Text)
    not_before: Mapped[int] = mapped_column(BigInteger)
    not_after: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RootRotationRow(Base):
    __tablename__ = "root_rotations"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[int] = mapped_column(BigInteger, index=True)  # a month's events, for its statistics
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, never personal data
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row every audited transaction locks to extend the chain in order."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    __tablename__ = "idempotency"

    actor: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    result_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class AgreementRow(Base):
    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_jurisdiction: Mapped[str] = mapped_column(String(2))
    partner_endpoint: Mapped[str] = mapped_column(String(300))
    partner_ca_pem: Mapped[str | None] = mapped_column(Text)
    document: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    imported_at: Mapped[int] = mapped_column(BigInteger)
    terminated_at: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    last_sync: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(Text)


class ForeignDocument(Base):
    """Verified trust material of a partner registry, republished to our nodes."""

    __tablename__ = "foreign_documents"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)  # "bundle:US" or a list uri
    jurisdiction: Mapped[str] = mapped_column(String(2), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # bundle | status_list | status_delta
    token: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(BigInteger)
    fetched_at: Mapped[int] = mapped_column(BigInteger)


PUBLISHED_ROWS: tuple[type[Base], ...] = (TrustBundleRow, StatusChange, ForeignDocument, RootRotationRow)
"""Rows that are published material: a transaction that adds, changes or removes one changed what
nodes and partners receive (a bundle, a status delta, a partner's document, a root rotation)."""
