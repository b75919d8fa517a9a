"""What a reconcile found: per check, how many quantities it compared and every mismatch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Mismatch:
    """One quantity the topics and a service disagree on (`service` None: the service does not
    know the entity at all)."""

    check: str
    subject: str
    recounted: object
    service: object
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "recounted": self.recounted,
            "service": self.service,
            "detail": self.detail,
        }


@dataclass
class Check:
    """One kind of number, e.g. `orders.state`: what it compares against what."""

    name: str
    description: str
    compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: str = ""
    # Skipped because a service did not answer (not because of the scope).
    unavailable: bool = False

    def compare(self, subject: str, recounted: object, service: object, detail: str = "") -> bool:
        self.compared += 1
        if recounted == service:
            return True
        self.mismatches.append(Mismatch(self.name, subject, recounted, service, detail))
        return False

    def skip_for(self, exc: Exception) -> None:
        """Skipped because a service did not answer (`ServiceUnavailable`)."""
        self.skip(str(exc), unavailable=bool(getattr(exc, "asked", True)))

    def skip(self, why: str, *, unavailable: bool = True) -> None:
        self.skipped = why
        self.unavailable = unavailable


@dataclass
class Report:
    scope: str
    checks: list[Check] = field(default_factory=list)
    records_read: int = 0
    duplicates: int = 0
    undecodable: int = 0
    totals: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, description: str) -> Check:
        found = Check(name, description)
        self.checks.append(found)
        return found

    @property
    def compared(self) -> int:
        return sum(c.compared for c in self.checks)

    @property
    def mismatches(self) -> list[Mismatch]:
        return [m for c in self.checks for m in c.mismatches]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def unanswered(self) -> list[Check]:
        return [c for c in self.checks if c.unavailable]

    @property
    def exit_code(self) -> int:
        """1: mismatches; 2: none, but a service did not answer some checks; 0: all matched."""
        return 1 if self.mismatches else 2 if self.unanswered else 0

    def verdict(self) -> str:
        n = len(self.mismatches)
        state = "0 mismatches" if not n else f"{n} MISMATCH{'ES' if n > 1 else ''}"
        skipped = len(self.unanswered)
        return (
            f"reconcile: {state} in {self.compared:,} quantities compared "
            f"({len([c for c in self.checks if c.compared])} checks, "
            f"{self.records_read:,} records read)"
            + (f"; {skipped} checks skipped: a service did not answer" if skipped else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict(),
            "scope": self.scope,
            "records_read": self.records_read,
            "duplicates_skipped": self.duplicates,
            "undecodable": self.undecodable,
            "compared": self.compared,
            "mismatch_count": len(self.mismatches),
            "checks": [
                {
                    "check": c.name,
                    "description": c.description,
                    "compared": c.compared,
                    "mismatches": len(c.mismatches),
                    "skipped": c.skipped,
                    "service_unavailable": c.unavailable,
                }
                for c in self.checks
            ],
            "mismatches": [m.to_dict() for m in self.mismatches],
            "totals": self.totals,
            "notes": self.notes,
        }
