"""The registry of administrative units (shared/units.py): two tiers since 1 July 2025, districts kept for history,
merges that hand a unit's dossiers to its successor. Pure."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from shared.units import AdminUnit, UnitError, UnitRegistry

END_OF_DISTRICTS = date(2025, 6, 30)
REFORM = date(2025, 7, 1)
PROVINCE = "H56"
DISTRICT_A, DISTRICT_B = "000.00.01.H56", "000.00.02.H56"
WARD_OLD = "000.01.01.H56"  # a ward of district A, before the reform
COMMUNE_1, COMMUNE_2, COMMUNE_3 = "000.10.01.H56", "000.10.02.H56", "000.10.03.H56"


def registry() -> UnitRegistry:
    """A province with two districts until 30 June 2025 and three communes from 1 July 2025."""
    return UnitRegistry(
        [
            AdminUnit(code=PROVINCE, name="Tỉnh Khánh Hòa", tier="province"),
            AdminUnit(code=DISTRICT_A, name="Thành phố Nha Trang", tier="district", parent=PROVINCE, valid_to=END_OF_DISTRICTS),
            AdminUnit(code=DISTRICT_B, name="Thị xã Ninh Hòa", tier="district", parent=PROVINCE, valid_to=END_OF_DISTRICTS),
            AdminUnit(code=WARD_OLD, name="Phường Lộc Thọ", tier="commune", parent=DISTRICT_A, valid_to=END_OF_DISTRICTS),
            AdminUnit(code=COMMUNE_1, name="Phường Nha Trang", tier="commune", parent=PROVINCE, valid_from=REFORM),
            AdminUnit(code=COMMUNE_2, name="Phường Bắc Nha Trang", tier="commune", parent=PROVINCE, valid_from=REFORM),
            AdminUnit(code=COMMUNE_3, name="Phường Ninh Hòa", tier="commune", parent=PROVINCE, valid_from=REFORM),
        ]
    )


def test_a_merge_ends_the_unit_the_day_before_and_sends_its_dossiers_to_the_successor() -> None:
    merged_registry, merged = registry().merge(COMMUNE_2, COMMUNE_1, date(2026, 1, 1))
    assert (merged.valid_to, merged.successor) == (date(2025, 12, 31), COMMUNE_1)
    assert merged_registry.get(COMMUNE_2) == merged
    assert merged_registry.current(COMMUNE_2, date(2025, 12, 31)) == COMMUNE_2
    assert merged_registry.current(COMMUNE_2, date(2026, 1, 1)) == COMMUNE_1
    assert merged_registry.receiving(COMMUNE_2, date(2026, 1, 1)) == COMMUNE_1
    assert merged_registry.receiving(COMMUNE_2, date(2025, 12, 31)) == COMMUNE_2
    assert registry().current(COMMUNE_2, date(2026, 1, 1)) == COMMUNE_2  # the registry before it is not changed


def test_merges_are_followed_to_the_last_successor() -> None:
    first, _ = registry().merge(COMMUNE_3, COMMUNE_2, date(2026, 1, 1))
    second, _ = first.merge(COMMUNE_2, COMMUNE_1, date(2026, 6, 1))
    assert second.current(COMMUNE_3, date(2026, 3, 1)) == COMMUNE_2
    assert second.current(COMMUNE_3, date(2026, 6, 1)) == COMMUNE_1


def test_a_unit_that_does_not_exist_that_day_receives_nothing_an_unknown_one_is_taken_as_is() -> None:
    units = registry()
    with pytest.raises(UnitError, match="does not exist on 2025-07-01"):
        units.receiving(DISTRICT_A, REFORM)
    with pytest.raises(UnitError, match="does not exist on 2025-06-30"):
        units.receiving(COMMUNE_1, END_OF_DISTRICTS)
    assert units.receiving(DISTRICT_A, END_OF_DISTRICTS) == DISTRICT_A
    assert units.receiving("000.00.12.H01", REFORM) == "000.00.12.H01"
    assert units.current("000.00.12.H01", REFORM) == "000.00.12.H01"


def test_members_follow_the_units_of_the_period() -> None:
    units = registry()
    q1_2025 = units.members(PROVINCE, date(2025, 1, 1), date(2025, 3, 31))
    assert q1_2025 == {PROVINCE, DISTRICT_A, DISTRICT_B, WARD_OLD}
    month_2026 = units.members(PROVINCE, date(2026, 1, 1), date(2026, 1, 31))
    assert month_2026 == {PROVINCE, COMMUNE_1, COMMUNE_2, COMMUNE_3}
    june_july = units.members(PROVINCE, date(2025, 6, 15), date(2025, 7, 15))
    assert june_july == {PROVINCE, DISTRICT_A, DISTRICT_B, WARD_OLD, COMMUNE_1, COMMUNE_2, COMMUNE_3}
    assert units.members(DISTRICT_A, date(2025, 1, 1), date(2025, 3, 31)) == {DISTRICT_A, WARD_OLD}


def test_a_merged_unit_counts_with_its_successor() -> None:
    merged, _ = registry().merge(COMMUNE_2, COMMUNE_1, date(2026, 1, 1))
    assert merged.members(COMMUNE_1, date(2026, 1, 1), date(2026, 1, 31)) == {COMMUNE_1, COMMUNE_2}
    assert merged.members(COMMUNE_3, date(2026, 1, 1), date(2026, 1, 31)) == {COMMUNE_3}
    # the province's month before and after the merge covers the same units
    assert merged.members(PROVINCE, date(2026, 1, 1), date(2026, 1, 31)) == registry().members(PROVINCE, date(2026, 1, 1), date(2026, 1, 31))


def test_province_of_climbs_the_parents() -> None:
    units = registry()
    assert units.province_of(WARD_OLD) == PROVINCE
    assert units.province_of(COMMUNE_1) == PROVINCE
    assert units.province_of(PROVINCE) == PROVINCE
    assert units.province_of("000.00.12.H01") is None


def test_declare_adds_and_corrects_units() -> None:
    units = registry().declare(
        [
            AdminUnit(code=COMMUNE_1, name="Phường Nha Trang (sửa tên)", tier="commune", parent=PROVINCE, valid_from=REFORM),
            AdminUnit(code="000.10.04.H56", name="Xã Vạn Ninh", tier="commune", parent=PROVINCE, valid_from=REFORM),
        ]
    )
    assert units.get(COMMUNE_1).name == "Phường Nha Trang (sửa tên)"
    assert units.get("000.10.04.H56").parent == PROVINCE
    assert len(units.units) == len(registry().units) + 1


def test_declare_refuses_an_unknown_parent_or_successor() -> None:
    with pytest.raises(UnitError) as parent:
        registry().declare([AdminUnit(code="000.10.09.H56", name="Xã Mới", tier="commune", parent="H99")])
    assert parent.value.field == "parent" and parent.value.unknown and "H99" in str(parent.value)
    with pytest.raises(UnitError) as successor:
        registry().declare(
            [AdminUnit(code="000.10.09.H56", name="Xã Mới", tier="commune", parent=PROVINCE, valid_to=date(2026, 1, 1), successor="X")]
        )
    assert successor.value.field == "successor" and successor.value.unknown


@pytest.mark.parametrize(
    ("code", "into", "effective", "field", "unknown", "says"),
    [
        ("000.99.99.H56", COMMUNE_1, date(2026, 1, 1), "code", True, "not in the registry"),
        (COMMUNE_2, "000.99.99.H56", date(2026, 1, 1), "into", True, "not in the registry"),
        (COMMUNE_2, COMMUNE_2, date(2026, 1, 1), "into", False, "into itself"),
        (COMMUNE_2, DISTRICT_A, date(2026, 1, 1), "into", False, "does not exist on 2026-01-01"),
        (COMMUNE_2, COMMUNE_1, REFORM, "effective", False, "only exists from 2025-07-01"),
        (COMMUNE_2, PROVINCE, date(2026, 1, 1), "into", False, None),  # allowed: a commune into its province
        (PROVINCE, COMMUNE_1, date(2026, 1, 1), "into", False, "is part of H56"),
    ],
)
def test_merge_refusals(code: str, into: str, effective: date, field: str, unknown: bool, says: str | None) -> None:
    if says is None:
        merged, unit = registry().merge(code, into, effective)
        assert unit.successor == into
        return
    with pytest.raises(UnitError) as caught:
        registry().merge(code, into, effective)
    assert (caught.value.field, caught.value.unknown) == (field, unknown)
    assert says in str(caught.value)


def test_a_unit_is_merged_once() -> None:
    merged, _ = registry().merge(COMMUNE_2, COMMUNE_1, date(2026, 1, 1))
    with pytest.raises(UnitError, match="already"):
        merged.merge(COMMUNE_2, COMMUNE_3, date(2026, 6, 1))


def test_a_unit_that_does_not_hang_together_is_refused() -> None:
    with pytest.raises(ValidationError, match="a province has no parent"):
        AdminUnit(code="H56", name="Tỉnh", tier="province", parent="VN")
    with pytest.raises(ValidationError, match="a commune needs its parent"):
        AdminUnit(code="000.10.01.H56", name="Phường", tier="commune")
    with pytest.raises(ValidationError, match="valid_to is before valid_from"):
        AdminUnit(code="000.10.01.H56", name="Phường", tier="commune", parent="H56", valid_from=REFORM, valid_to=END_OF_DISTRICTS)
    with pytest.raises(ValidationError, match="needs valid_to"):
        AdminUnit(code="000.10.01.H56", name="Phường", tier="commune", parent="H56", successor="000.10.02.H56")
