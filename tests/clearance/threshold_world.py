"""A registry whose root is a k-of-n root document, for the threshold tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from clearance.bundle import IssuingKey, StatusListLocation, TrustBundle
from clearance.keys import SigningKey
from clearance.rootdoc import RootDocument
from tests.factories import CATEGORIES, DAY, LEVELS, NOW


def keys(n: int) -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(n)]


@dataclass
class ThresholdRegistry:
    """A registry with a root set: every version's keys and documents kept."""

    jurisdiction: str
    root_keys: list[SigningKey]
    roots: list[RootDocument] = field(default_factory=list)
    issuing: SigningKey = field(default_factory=SigningKey.generate)

    @classmethod
    def create(cls, jurisdiction: str = "JP", *, n: int = 3, k: int = 2) -> ThresholdRegistry:
        root_keys = keys(n)
        first = RootDocument(jurisdiction, 1, k, tuple(key.public for key in root_keys), NOW)
        return cls(jurisdiction, root_keys, [first.sign(root_keys[:k])])

    @property
    def root(self) -> RootDocument:
        return self.roots[-1]

    @property
    def issuer(self) -> str:
        return f"https://registry.{self.jurisdiction.lower()}.example"

    def rotate(self, new_keys: list[SigningKey], k: int, signers: list[SigningKey]) -> RootDocument:
        """The next root document, signed by ``signers`` (kept as the new current root)."""
        old = self.root
        draft = RootDocument(
            self.jurisdiction, old.version + 1, k, tuple(key.public for key in new_keys), NOW + old.version
        )
        new = draft.sign(signers)
        self.roots.append(new)
        self.root_keys = new_keys
        return new

    def bundle(
        self, *, version: int = 1, expires_in: int = DAY, root: RootDocument | None = None
    ) -> TrustBundle:
        return TrustBundle(
            issuer=self.issuer,
            jurisdiction=self.jurisdiction,
            version=version,
            issued_at=NOW,
            expires_at=NOW + expires_in,
            root=(root or self.root).fingerprint,
            issuing_keys=(IssuingKey(self.issuing.public, NOW - DAY, NOW + 365 * DAY),),
            levels=LEVELS,
            categories=CATEGORIES,
            status_lists=(StatusListLocation(f"{self.issuer}/statuslists/1", 2),),
        )
