"""The law in force as data: effective-dated rule sets, national with a province override (DOMAIN §0). Pure.

A rule set version (``RuleVersion``) is what an admin publishes: a scope (``VN`` for the national rules or a province
code such as ``H56``), a regime (the decree it implements), the day it takes effect and the rule sections. A national
version holds every section; a province override holds only the sections it changes (its forms merge form by form),
and applies only while the national rules in force are of its regime. A version is in force from its
``effective_from`` until the next version of its scope takes effect; history is never rewritten.

``RuleBook.in_force(day, province)`` resolves the rules of a dossier received that day: a complete ``Rules`` with a
``ref`` such as ``VN.2+H56.1``. The dossier records the ref, and ``RuleBook.by_ref`` gives the same rules back to the
end of its life, whatever is published later.

The shipped versions (``shared/law/rulesets.json``) are the regimes this release knows: Decree 61/2018 as amended by
107/2021 with the Circular 01/2018 forms, until 30 June 2025, and Decree 118/2025 as amended by 367/2025 with the
Circular 03/2025 forms from 1 July 2025. A province corrects what is marked uncertain there by publishing a version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.clock import VN_TZ

NATIONAL = "VN"
SHIPPED = Path(__file__).with_name("law") / "rulesets.json"

FormKey = Literal["receipt", "supplement", "refusal", "apology", "stop", "control", "register"]
# Forms every regime has (the stop notice is new in Circular 03/2025).
REQUIRED_FORMS: frozenset[str] = frozenset({"receipt", "supplement", "refusal", "apology", "control", "register"})
NATIONAL_STATUS_CODES = frozenset(range(1, 11))
SupplementPolicy = Literal["pause", "restart"]
_SECTIONS = ("office", "counting", "deadlines", "forms", "dossier_code", "statuses", "indicators")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OfficeHours(_Strict):
    """When the one-stop receives, and the same-day cut-off: a dossier received after it counts from the next day."""

    opens: time
    closes: time
    cutoff: time

    @model_validator(mode="after")
    def _ordered(self) -> OfficeHours:
        if not self.opens < self.closes:
            raise ValueError("office hours: opens must be before closes")
        if not self.opens <= self.cutoff <= self.closes:
            raise ValueError("office hours: the cut-off must lie within office hours")
        return self


class Counting(_Strict):
    """How working days are counted: what a supplement request does to the clock, how often the appointment moves."""

    supplement: SupplementPolicy = Field(
        description="pause: the days left are kept and counted on from the supplement; restart: the full time again"
    )
    max_supplement_requests: int = Field(ge=0, le=10, description="requests for additions during processing")
    max_reschedules: int = Field(ge=0, le=10, description="how many times an apology may set a new appointment")


class Deadlines(_Strict):
    """Lead times and answer times that the law sets in working days."""

    apology_lead_working_days: int = Field(ge=0, le=30, description="the apology is due this many working days before the deadline")
    feedback_working_days: int = Field(ge=1, le=90, description="a citizen's feedback (phản ánh, kiến nghị) is answered within")


class FormSpec(_Strict):
    """One form of the set: its number in the appendix and its title as printed."""

    number: str = Field(pattern=r"^\d{2}$")
    title: str = Field(min_length=3, max_length=200)


class Indicator(_Strict):
    """How one report indicator scores: ``min(max, max × rate / full_at)``; ``empty`` is the score when nothing is measured."""

    name: str = Field(min_length=1, max_length=300)
    max_points: float = Field(ge=0, le=100)
    full_at: float = Field(gt=0, le=1)
    empty: Literal["zero", "full", "na"] = "zero"


class Sections(_Strict):
    """The rule sections; all optional here (a province override), all required in a national version."""

    office: OfficeHours | None = None
    counting: Counting | None = None
    deadlines: Deadlines | None = None
    forms: dict[FormKey, FormSpec] | None = None
    dossier_code: str | None = Field(default=None, min_length=5, max_length=100, description="a str.format pattern of unit, day, sequence")
    statuses: dict[int, str] | None = Field(default=None, description="national status code → the name shown")
    indicators: dict[str, Indicator] | None = None


class RuleVersion(Sections):
    """One published version of a scope's rules."""

    scope: str = Field(pattern=r"^(VN|[A-Z][A-Z0-9]{1,7})$", description="VN (national) or a province code (H56)")
    version: int = Field(ge=1)
    regime: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9-]+$")
    effective_from: date
    title: str = Field(min_length=3, max_length=300)
    legal_basis: tuple[str, ...] = ()
    notes: str | None = Field(default=None, max_length=2000, description="what is uncertain, for the province to check")
    published_at: datetime | None = None
    published_by: str | None = None

    @property
    def ref(self) -> str:
        """``VN.2`` or ``H56.1``: the scope and the version number."""
        return f"{self.scope}.{self.version}"

    def sections(self) -> dict[str, Any]:
        """The sections this version sets."""
        return {name: getattr(self, name) for name in _SECTIONS if getattr(self, name) is not None}


class Rules(_Strict):
    """The complete rules of one dossier: national rules with the province override applied."""

    ref: str
    regime: str
    title: str
    effective_from: date
    office: OfficeHours
    counting: Counting
    deadlines: Deadlines
    forms: dict[FormKey, FormSpec]
    dossier_code: str
    statuses: dict[int, str]
    indicators: dict[str, Indicator]

    def form(self, key: FormKey) -> FormSpec | None:
        """The form for ``key`` in this set, or None when the regime has none (the stop notice before 2025)."""
        return self.forms.get(key)

    def status_name(self, code: int) -> str:
        """The name of a national status code in this regime."""
        return self.statuses.get(int(code), str(code))


class RuleError(ValueError):
    """A version that cannot be published; ``problems`` says every reason, for a 422."""

    def __init__(self, problems: list[str], *, conflict: bool = False) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.conflict = conflict


def complete(national: RuleVersion, override: RuleVersion | None = None) -> Rules:
    """The rules of a national version with an override on top (raises ``RuleError`` when they do not validate)."""
    merged: dict[str, Any] = national.sections()
    ref = national.ref
    if override is not None:
        for name, value in override.sections().items():
            merged[name] = {**merged["forms"], **value} if name == "forms" else value
        ref = f"{ref}+{override.ref}"
    try:
        rules = Rules(ref=ref, regime=national.regime, title=national.title, effective_from=national.effective_from, **merged)
    except ValidationError as exc:
        raise RuleError([_problem(e) for e in exc.errors()]) from exc
    missing = REQUIRED_FORMS - set(rules.forms)
    problems = [f"forms: the set has no {key!r} form" for key in sorted(missing)]
    numbers = [f.number for f in rules.forms.values()]
    if len(numbers) != len(set(numbers)):
        problems.append("forms: two forms share a number")
    if set(rules.statuses) != NATIONAL_STATUS_CODES:
        problems.append("statuses: every national status code 1-10 needs a name")
    total = sum(i.max_points for i in rules.indicators.values())
    if rules.indicators and abs(total - 100) > 1e-6:
        problems.append(f"indicators: the points add up to {total:g}, not 100")
    try:
        sample = rules.dossier_code.format(unit="000.00.12.H56", day=date(2025, 7, 1), sequence=1)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        problems.append(f"dossier_code: {rules.dossier_code!r} cannot be formatted with unit, day, sequence ({exc})")
    else:
        if "{sequence" not in rules.dossier_code or len(sample) > 64:
            problems.append("dossier_code: the code must hold the sequence and fit in 64 characters")
    if problems:
        raise RuleError(problems)
    return rules


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


class RuleBook:
    """Every published version, and which one is in force when. Immutable: publishing gives a new book."""

    def __init__(self, versions: Iterable[RuleVersion]) -> None:
        self._versions: dict[str, list[RuleVersion]] = {}
        for v in sorted(versions, key=lambda v: (v.scope, v.effective_from, v.version)):
            self._versions.setdefault(v.scope, []).append(v)
        self._by_ref = {v.ref: v for vs in self._versions.values() for v in vs}
        self._complete: dict[tuple[str, str | None], Rules] = {}

    @property
    def versions(self) -> list[RuleVersion]:
        """Every version, by scope and date."""
        return [v for vs in self._versions.values() for v in vs]

    @property
    def regimes(self) -> frozenset[str]:
        """The regimes the national versions implement: an override or a new version must name one of them."""
        return frozenset(v.regime for v in self._versions.get(NATIONAL, ()))

    def history(self, scope: str | None = None) -> list[RuleVersion]:
        """The versions of a scope (or all), oldest first."""
        return self.versions if scope is None else list(self._versions.get(scope, ()))

    def version(self, scope: str, day: date) -> RuleVersion | None:
        """The version of ``scope`` in force on ``day``."""
        found = None
        for v in self._versions.get(scope, ()):
            if v.effective_from <= day:
                found = v
        return found

    def effective_to(self, v: RuleVersion) -> date | None:
        """The last day ``v`` is in force (the day before its successor's), or None while it has none."""
        later = [w.effective_from for w in self._versions.get(v.scope, ()) if w.effective_from > v.effective_from]
        return date.fromordinal(min(later).toordinal() - 1) if later else None

    def in_force(self, at: date | datetime, province: str | None = None) -> Rules:
        """The rules of a dossier received at ``at`` (a datetime is read in Vietnam) in ``province``."""
        day = at.astimezone(VN_TZ).date() if isinstance(at, datetime) else at
        national = self.version(NATIONAL, day)
        if national is None:
            raise LookupError(f"no national rules are in force on {day.isoformat()}")
        override = self.version(province, day) if province and province != NATIONAL else None
        if override is not None and override.regime != national.regime:
            override = None  # an override of an earlier regime ends with it
        return self._rules(national, override)

    def _rules(self, national: RuleVersion, override: RuleVersion | None) -> Rules:
        key = (national.ref, override.ref if override else None)
        if key not in self._complete:
            self._complete[key] = complete(national, override)
        return self._complete[key]

    def by_ref(self, ref: str) -> Rules:
        """The rules a dossier recorded (``VN.2`` or ``VN.2+H56.1``); raises ``LookupError`` for an unknown ref."""
        national_ref, _, override_ref = ref.partition("+")
        national = self._by_ref.get(national_ref)
        override = self._by_ref.get(override_ref) if override_ref else None
        if national is None or (override_ref and override is None):
            raise LookupError(f"unknown rule set {ref!r}")
        return self._rules(national, override)

    def rules_of(self, ref: str | None, at: datetime, province: str | None) -> Rules:
        """The rules a dossier recorded, or for a dossier from before refs were recorded, those in force at ``at``."""
        if ref:
            try:
                return self.by_ref(ref)
            except LookupError:
                pass  # a version this process has not heard of yet: the date decides, as it did at reception
        return self.in_force(at, province)

    def next_version(self, scope: str) -> int:
        """The number the next version of ``scope`` gets."""
        return max((v.version for v in self._versions.get(scope, ())), default=0) + 1

    def check(self, candidate: RuleVersion, *, today: date) -> None:
        """Raise ``RuleError`` unless ``candidate`` may be published on ``today``.

        Refused: an unknown regime; a day in the past (dossiers received since then kept the rules then in force);
        a day on or before a version of the same scope already published (overlapping effective dates); a national
        version that lacks a section; any rules it would make that do not validate.
        """
        problems: list[str] = []
        known = self.regimes | ({candidate.regime} if candidate.scope == NATIONAL and not self.regimes else frozenset())
        if candidate.regime not in known:
            problems.append(f"regime: unknown regime {candidate.regime!r} (known: {', '.join(sorted(self.regimes))})")
        if candidate.effective_from < today:
            problems.append(f"effective_from: {candidate.effective_from.isoformat()} is in the past; a version takes effect today or later")
        overlap = [v for v in self._versions.get(candidate.scope, ()) if v.effective_from >= candidate.effective_from]
        if overlap:
            latest = overlap[-1]
            raise RuleError(
                [
                    f"effective_from: {candidate.scope} version {latest.version} is in force from "
                    f"{latest.effective_from.isoformat()}; a new version must take effect after it (overlapping effective dates)"
                ],
                conflict=True,
            )
        if problems:
            raise RuleError(problems)
        if candidate.scope == NATIONAL:
            missing = [s for s in _SECTIONS if getattr(candidate, s) is None]
            if missing:
                raise RuleError([f"{s}: a national version needs this section" for s in missing])
            complete(candidate)
        else:
            national = self.version(NATIONAL, candidate.effective_from)
            if national is None or national.regime != candidate.regime:
                raise RuleError([f"regime: the national rules on {candidate.effective_from.isoformat()} are not of regime {candidate.regime!r}"])
            for later in [national, *(v for v in self._versions.get(NATIONAL, ()) if v.effective_from > candidate.effective_from)]:
                if later.regime == candidate.regime:
                    complete(later, candidate)

    def publish(self, candidate: RuleVersion, *, today: date, at: datetime, by: str | None) -> tuple[RuleBook, RuleVersion]:
        """Check ``candidate`` and number it: the new book and the version as published."""
        self.check(candidate, today=today)
        published = candidate.model_copy(
            update={"version": self.next_version(candidate.scope), "published_at": at, "published_by": by}
        )
        return RuleBook([*self.versions, published]), published


def parse_version(data: Mapping[str, Any]) -> RuleVersion:
    """A version from its JSON document (statuses keyed by strings in JSON)."""
    return RuleVersion.model_validate(dict(data))


def dump_version(v: RuleVersion) -> dict[str, Any]:
    """The JSON document of a version (what is stored and what the event carries)."""
    return v.model_dump(mode="json", exclude_none=True)


@cache
def shipped_versions() -> tuple[RuleVersion, ...]:
    """The national versions this release ships (``shared/law/rulesets.json``)."""
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return tuple(parse_version(d) for d in data["versions"])


def shipped_book() -> RuleBook:
    """A book of the shipped versions only."""
    return RuleBook(shipped_versions())
