"""What inspection found, and the interface every kind of artifact implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearance.errors import VerificationError
from clearance.inspect.trust import Trust


@dataclass(slots=True)
class Report:
    """What inspection found, filled in as it goes so that a refusal still shows what was decoded."""

    at: int
    kind: str = "unknown"
    fields: dict[str, Any] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    anchored: str | None = None
    """What a successful verdict rests on; None until anchored checks passed."""
    unanchored: str = "no --root or --jwks given"
    failure: VerificationError | None = None

    def verification(self) -> dict[str, Any]:
        if self.failure is not None:
            checked, valid = True, False
            reason: str | None = self.failure.reason.value
            detail: str | None = self.failure.detail
        elif self.anchored is not None:
            checked, valid, reason, detail = True, True, None, self.anchored
        else:
            checked, valid, reason, detail = False, None, None, self.unanchored
        return {
            "checked": checked,
            "valid": valid,
            "reason": reason,
            "detail": detail,
            "passed": list(self.passed),
            "not_checked": list(self.not_checked),
        }

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, **self.fields, "verification": self.verification()}


class Inspector:
    """One kind of artifact: decode it with its self-contained checks, then verify it against trust."""

    kind = "unknown"
    anchor = "nothing to verify"
    """What anchored verification of this kind needs (shown when no trust was given)."""

    def decode(self, report: Report) -> None:
        """Decode into ``report`` and run the self-contained checks.

        Raises:
            VerificationError: the artifact can never be valid.
        """
        raise NotImplementedError

    def verify(self, trust: Trust, report: Report) -> str:
        """Run the anchored checks; return what the verdict rests on.

        Raises:
            VerificationError: the artifact does not verify against ``trust``.
        """
        raise NotImplementedError
