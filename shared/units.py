"""The administrative units as effective-dated data: code, name, tier, parent, valid from/to, successor. Pure.

Since 1 July 2025 local government has two tiers, province and commune; districts stay in the registry for the
history they carry. When a unit is merged into another its ``valid_to`` is the day before the merge and its
``successor`` the unit that takes its dossiers over. A unit the registry does not know is taken as it is (no merge,
no roll-up beyond its code): the registry covers what a province has entered.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tier = Literal["province", "district", "commune", "agency"]


class AdminUnit(BaseModel):
    """One unit of the registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64, description="electronic identifier (QCVN 102:2016)")
    name: str = Field(min_length=1, max_length=300)
    tier: Tier
    parent: str | None = Field(default=None, max_length=64, description="the unit above it; null for a province")
    valid_from: date | None = None
    valid_to: date | None = Field(default=None, description="the last day it exists; null while it does")
    successor: str | None = Field(default=None, max_length=64, description="the unit it was merged into")

    @model_validator(mode="after")
    def _coherent(self) -> AdminUnit:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if self.tier == "province" and self.parent is not None:
            raise ValueError("a province has no parent")
        if self.tier != "province" and self.parent is None:
            raise ValueError(f"a {self.tier} needs its parent")
        if self.successor is not None and self.valid_to is None:
            raise ValueError("a unit with a successor needs valid_to")
        return self

    def valid_on(self, day: date) -> bool:
        """Whether the unit exists on ``day``."""
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


class UnitError(ValueError):
    """A registry change or a unit that cannot be used; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.unknown = unknown


class UnitRegistry:
    """Every unit and how they hang together. Immutable: a change gives a new registry."""

    def __init__(self, units: Iterable[AdminUnit] = ()) -> None:
        self._units = {u.code: u for u in units}
        self._children: dict[str, list[str]] = {}
        self._predecessors: dict[str, list[str]] = {}
        for u in self._units.values():
            if u.parent:
                self._children.setdefault(u.parent, []).append(u.code)
            if u.successor:
                self._predecessors.setdefault(u.successor, []).append(u.code)

    @property
    def units(self) -> list[AdminUnit]:
        """Every unit, by code."""
        return [self._units[c] for c in sorted(self._units)]

    def get(self, code: str) -> AdminUnit | None:
        """The unit of ``code``, if the registry knows it."""
        return self._units.get(code)

    def current(self, code: str, day: date) -> str:
        """The unit that holds ``code``'s dossiers on ``day``: itself, or the successor it was merged into (followed)."""
        seen = {code}
        unit = self._units.get(code)
        while unit is not None and unit.successor and unit.valid_to is not None and unit.valid_to < day:
            if unit.successor in seen:
                break
            seen.add(unit.successor)
            code, unit = unit.successor, self._units.get(unit.successor)
        return code

    def receiving(self, code: str, day: date) -> str:
        """The unit a dossier for ``code`` received on ``day`` goes to; refuses a unit that no longer or not yet exists."""
        target = self.current(code, day)
        unit = self._units.get(target)
        if unit is not None and not unit.valid_on(day):
            raise UnitError("unit", f"the unit {target} ({unit.name}) does not exist on {day.isoformat()}")
        return target

    def members(self, code: str, first: date, last: date) -> frozenset[str]:
        """The units a report of ``code`` over ``first`` … ``last`` covers: the unit, every unit below it that existed in
        the period, and every unit merged into one of these (their dossiers are the successor's)."""
        found: set[str] = set()
        todo = [code]
        while todo:
            c = todo.pop()
            if c in found:
                continue
            found.add(c)
            for child in self._children.get(c, ()):
                u = self._units[child]
                if (u.valid_from is None or u.valid_from <= last) and (u.valid_to is None or first <= u.valid_to):
                    todo.append(child)
            todo.extend(self._predecessors.get(c, ()))
        return frozenset(found)

    def province_of(self, code: str) -> str | None:
        """The province above ``code`` in the registry."""
        unit, seen = self._units.get(code), set()
        while unit is not None and unit.parent and unit.code not in seen:
            seen.add(unit.code)
            unit = self._units.get(unit.parent)
        return unit.code if unit is not None and unit.tier == "province" else None

    def declare(self, units: Iterable[AdminUnit]) -> UnitRegistry:
        """The registry with ``units`` added or corrected; every parent and successor must be known (here or among them)."""
        merged = {**self._units, **{u.code: u for u in units}}
        for u in merged.values():
            if u.parent and u.parent not in merged:
                raise UnitError("parent", f"{u.code}: the parent {u.parent} is not in the registry", unknown=True)
            if u.successor and u.successor not in merged:
                raise UnitError("successor", f"{u.code}: the successor {u.successor} is not in the registry", unknown=True)
        return UnitRegistry(merged.values())

    def merge(self, code: str, into: str, effective: date) -> tuple[UnitRegistry, AdminUnit]:
        """``code`` merged into ``into`` from ``effective``: ``code`` ends the day before and names ``into`` its successor."""
        unit, target = self._units.get(code), self._units.get(into)
        if unit is None:
            raise UnitError("code", f"the unit {code} is not in the registry", unknown=True)
        if target is None:
            raise UnitError("into", f"the unit {into} is not in the registry: a unit is merged into a known unit", unknown=True)
        if code == into:
            raise UnitError("into", "a unit cannot be merged into itself")
        if unit.successor is not None:
            raise UnitError("code", f"{code} was merged into {unit.successor} already")
        if not target.valid_on(effective):
            raise UnitError("into", f"{into} does not exist on {effective.isoformat()}")
        last = effective - timedelta(days=1)
        if unit.valid_from is not None and last < unit.valid_from:
            raise UnitError("effective", f"{code} only exists from {unit.valid_from.isoformat()}")
        if self.current(into, effective) == code or code in self._ancestors(into):
            raise UnitError("into", f"{into} is part of {code}: a unit is merged into another")
        merged = unit.model_copy(update={"valid_to": last, "successor": into})
        return UnitRegistry([*(u for c, u in self._units.items() if c != code), merged]), merged

    def _ancestors(self, code: str) -> set[str]:
        found: set[str] = set()
        unit = self._units.get(code)
        while unit is not None and unit.parent and unit.parent not in found:
            found.add(unit.parent)
            unit = self._units.get(unit.parent)
        return found
