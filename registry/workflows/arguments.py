"""What requests carry, checked once for every workflow: text, public keys, levels and categories, pages."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from clearance.errors import InvalidArgumentError, MalformedError
from clearance.keys import PublicKey
from registry.config import RegistryConfig
from registry.policy import Caller, scoped_listing
from registry.store.db import Database

T = TypeVar("T")
Row = TypeVar("Row")
Query = TypeVar("Query", bound=Select[Any])

MAX_PAGE = 500
DEFAULT_PAGE = 100


def require_text(value: str, field_name: str, *, max_length: int = 2000, allow_empty: bool = False) -> str:
    """A trimmed text argument.

    Raises:
        InvalidArgumentError: empty (unless allowed), too long, or with control characters.
    """
    text = (value or "").strip()
    if not text and not allow_empty:
        raise InvalidArgumentError(field_name, "is required")
    if len(text) > max_length:
        raise InvalidArgumentError(field_name, f"is longer than {max_length} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidArgumentError(field_name, "contains control characters")
    return text


def parse_public_jwk(text: str, field_name: str) -> PublicKey:
    """A public Ed25519 or P-256 key sent as a JWK.

    Raises:
        InvalidArgumentError: not JSON, or not a public Ed25519/P-256 JWK.
    """
    try:
        return PublicKey.from_jwk(json.loads(text))
    except (ValueError, MalformedError) as exc:
        detail = exc.detail if isinstance(exc, MalformedError) else "is not JSON"
        raise InvalidArgumentError(field_name, f"not a public Ed25519/P-256 JWK: {detail}") from exc


def check_level_and_categories(config: RegistryConfig, level: str, categories: Sequence[str]) -> None:
    """Accept only this jurisdiction's levels and categories.

    Raises:
        InvalidArgumentError: an unknown level, no category, an unknown or repeated one.
    """
    if level not in config.levels:
        raise InvalidArgumentError("level", f"must be one of {list(config.levels)}")
    if not categories:
        raise InvalidArgumentError("categories", "at least one category is required")
    unknown = sorted(set(categories) - set(config.categories))
    if unknown:
        raise InvalidArgumentError(
            "categories", f"unknown categories {unknown}; known: {list(config.categories)}"
        )
    if len(set(categories)) != len(categories):
        raise InvalidArgumentError("categories", "repeat an entry")


@dataclass(frozen=True)
class PageRequest:
    """Which page of a listing a caller asks for: at most ``limit`` items after the first ``offset``.

    Raises:
        InvalidArgumentError: a negative size, or a token this registry did not issue.
    """

    limit: int
    offset: int

    @classmethod
    def parse(cls, page_size: int, page_token: str) -> PageRequest:
        """The page a request's ``page_size`` and ``page_token`` name.

        Raises:
            InvalidArgumentError: a negative size, or a token this registry did not issue.
        """
        if page_size < 0:
            raise InvalidArgumentError("page.page_size", "must not be negative")
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        if not page_token:
            return cls(limit, 0)
        if not page_token.isdigit() or len(page_token) > 12:
            raise InvalidArgumentError("page.page_token", "is not a token this registry issued")
        return cls(limit, int(page_token))

    def window(self, query: Query) -> Query:
        """``query`` limited to this page."""
        return query.limit(self.limit).offset(self.offset)

    def read(self, db: Database, query: Select[Row], view: Callable[[Row], T]) -> Page[T]:
        """This page of the rows ``query`` selects, each made a record by ``view``."""
        with db.transaction(readonly=True) as session:
            return self.of([view(row) for row in session.execute(self.window(query)).scalars()])

    def of(self, items: Sequence[T], *, read: int | None = None) -> Page[T]:
        """The page holding ``items``; ``read`` rows were read for it (when some were left out after)."""
        full = (len(items) if read is None else read) == self.limit
        return Page(tuple(items), str(self.offset + self.limit) if full else "")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Part of a listing, and the token that asks for the rest (empty at the end)."""

    items: tuple[T, ...]
    next_page_token: str


def of_organization(
    query: Query,
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    caller: Caller,
    organization_id: str,
) -> Query:
    """A listing limited to the organization it names, and to their own for a security officer.

    Raises:
        PermissionDeniedError: an officer naming another organization.
    """
    organization_id = scoped_listing(caller, organization_id)
    return query.where(column == organization_id) if organization_id else query
