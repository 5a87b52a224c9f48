"""The national procedure list read into the catalog's terms, merged with the local catalog, and the diff an admin
sees before applying it (services/intake/domain.py, pure)."""

from __future__ import annotations

from typing import Any

import pytest

from services.intake import domain

MAPPING = domain.national_mapping()


def seed(code: str) -> dict[str, Any]:
    return dict(next(d for d in domain.seed_documents() if d["code"] == code))


def lay_thu_tuc(code: str, name: str, *, field: str = "Cư trú", days: Any = 3, unit: str = "Ngày làm việc",
                fees: list[dict[str, Any]] | None = None, online_fees: list[dict[str, Any]] | None = None,
                papers: list[str] | None = None, online: bool = True, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """A LayThuTuc record shaped as the public implementations read it."""
    channels = [{"KENH": 1, "THOIGIAN": [{"THOIGIANGIAIQUYET": days, "DONVITINH": unit, "MOTA": "", "PHILEPHI": fees or []}]}]
    if online:
        channels.append({"KENH": "2", "THOIGIAN": [{"THOIGIANGIAIQUYET": days, "DONVITINH": unit, "PHILEPHI": online_fees or []}]})
    return {
        "MATTHC": code, "TENTTHC": name, "LINHVUCTHUCHIEN": [{"MALINHVUC": "G09-CA03", "TENLINHVUC": field}],
        "CACHTHUCTHUCHIEN": channels,
        "THANHPHANHOSO": [{"TRUONGHOP": "", "GIAYTO": [{"MAGIAYTO": f"GT{n}", "TENGIAYTO": p, "SOBANCHINH": 1, "SOBANSAO": 0}
                                                      for n, p in enumerate(papers or [])]}],
        **extra,
    }  # fmt: skip


def test_a_path_reads_keys_indexes_and_the_first_item_with_a_value() -> None:
    record = lay_thu_tuc("1.004194", "Đăng ký tạm trú", fees=[{"MAPHILEPHI": "LP", "SOTIEN": "15.000", "MOTA": "Lệ phí"}])
    assert domain.pick(record, "LINHVUCTHUCHIEN.0.TENLINHVUC") == "Cư trú"
    assert domain.pick(record, "CACHTHUCTHUCHIEN.KENH=1.THOIGIAN.0.PHILEPHI.0.SOTIEN") == "15.000"
    assert domain.pick(record, "CACHTHUCTHUCHIEN.KENH=2.THOIGIAN.0.DONVITINH") == "Ngày làm việc"  # "2" and 2 alike
    assert domain.pick(record, "CACHTHUCTHUCHIEN.KENH=3") is None and domain.pick(record, "LINHVUCTHUCHIEN.5.X") is None
    assert domain.pick(record, "TENTTHC.X") is None and domain.pick(record, "") == record


@pytest.mark.parametrize(("text", "amount"), [(15000, 15000), ("15.000", 15000), ("15,000 đồng", 15000), ("Không", 0),
                                              (None, 0), ("", 0), (7000.0, 7000), ("2.000 đồng/trang", None), (1.5, None)])  # fmt: skip
def test_fee_amounts_are_read_as_the_national_record_writes_them(text: Any, amount: int | None) -> None:
    assert domain.vnd_amount(text) == amount


def test_a_record_gives_the_catalog_fields_it_has() -> None:
    record = lay_thu_tuc(
        "1.004194", "Đăng ký tạm trú", fees=[{"MAPHILEPHI": "LP", "SOTIEN": "15.000", "MOTA": "Lệ phí đăng ký tạm trú"}],
        online_fees=[{"MAPHILEPHI": "LP", "SOTIEN": 7000}], papers=["Tờ khai thay đổi thông tin cư trú", "Giấy tờ chứng minh chỗ ở"],
    )  # fmt: skip
    found = domain.national_procedure(record, MAPPING)
    assert found.code == "1.004194" and found.notes == ()
    assert found.fields == {
        "code_verified": True, "name": "Đăng ký tạm trú", "field": "Cư trú", "field_code": "G09-CA03",
        "time_limit": {"amount": 3, "unit": "WORKING_DAY"},
        "fee_lines": [{"code": "LP", "name": "Lệ phí đăng ký tạm trú", "amount": 15000, "online_amount": 7000}],
        "components": ["Tờ khai thay đổi thông tin cư trú", "Giấy tờ chứng minh chỗ ở"], "online_channel": True,
    }  # fmt: skip


def test_what_a_record_gives_but_cannot_be_read_is_noted_and_left_out() -> None:
    record = lay_thu_tuc("2.000815", "Chứng thực bản sao từ bản chính", field="Chứng thực", days=1, unit="Buổi",
                         fees=[{"MAPHILEPHI": "CT", "SOTIEN": "2.000 đồng/trang"}], MUCDO="5")  # fmt: skip
    found = domain.national_procedure(record, MAPPING)
    assert "time_limit" not in found.fields and "fee_lines" not in found.fields and "online_level" not in found.fields
    assert [n.split(":")[0] for n in found.notes] == ["time_limit", "fee_lines", "online_level"]


def test_the_mapping_is_configuration_a_province_corrects() -> None:
    mapping = domain.national_mapping({"name": "TEN", "time_units": {"ngày làm việc": "WORKING_DAY", "buổi": "WORKING_HOUR"}})
    found = domain.national_procedure({"MATTHC": "X.1", "TEN": "Thủ tục X", **lay_thu_tuc("X.1", "", unit="Buổi")}, mapping)
    assert found.fields["name"] == "Thủ tục X" and found.fields["time_limit"] == {"amount": 3, "unit": "WORKING_HOUR"}
    with pytest.raises(ValueError, match="unknown national catalog mapping keys"):
        domain.national_mapping({"TENTTHC": "name"})


def test_a_national_record_replaces_the_fields_it_gives_and_the_local_ones_stay() -> None:
    local = seed("1.004194")  # 3 WD, 15,000 / 7,000 online, per-case, the province's evidence
    local["fee_lines"][0]["exemptions"] = ["nguoi_co_cong"]
    record = lay_thu_tuc("1.004194", "Đăng ký tạm trú", days=2,
                         fees=[{"MAPHILEPHI": local["fee_lines"][0]["code"], "SOTIEN": "20.000", "MOTA": "Lệ phí"}],
                         papers=["Tờ khai thay đổi thông tin cư trú"])  # fmt: skip
    merged = domain.merge_national(local, domain.national_procedure(record, MAPPING), evidence="DVCQG")
    assert merged["time_limit"] == {**local["time_limit"], "amount": 2}  # the 15:00 rule and verification time stay
    (line,) = merged["fee_lines"]
    assert (line["amount"], line["exemptions"], line["unit"]) == (20000, ["nguoi_co_cong"], local["fee_lines"][0]["unit"])
    assert line["online_amount"] == local["fee_lines"][0]["online_amount"]  # the record says nothing else online
    assert [c["name"] for c in merged["components"]] == ["Tờ khai thay đổi thông tin cư trú"]
    for key in ("online_level", "on_the_spot", "committed_limit", "lien_thong_steps", "evidence"):
        assert merged[key] == local[key], key
    assert merged["field_code"] == "G09-CA03"
    assert domain.procedure_from_json(merged).time_limit.amount == 2


def test_a_component_the_record_names_keeps_its_local_form() -> None:
    local = seed("1.001193")
    first = local["components"][0]
    record = lay_thu_tuc("1.001193", local["name"], field="Hộ tịch", papers=[first["name"], "Giấy tờ mới"])
    merged = domain.merge_national({**local, "components": [{**first, "digitize": False}]}, domain.national_procedure(record, MAPPING),
                                   evidence="DVCQG")  # fmt: skip
    assert merged["components"] == [{**first, "digitize": False}, {"name": "Giấy tờ mới", "mandatory": True, "form": "original", "digitize": True}]


def test_the_diff_shows_added_changed_with_fields_unchanged_local_only_and_unusable() -> None:
    local = {code: seed(code) for code in ("1.004194", "1.001193", "LOCAL.KD.024")}
    # 1.001193 exactly as the catalog has it (fields the record gives equal the local ones): unchanged
    unchanged = domain.NationalProcedure(code="1.001193", fields={k: local["1.001193"][k] for k in ("name", "field", "code_verified")})
    records = [
        domain.national_procedure(lay_thu_tuc("1.004194", "Đăng ký tạm trú", days=5), MAPPING),
        unchanged,
        domain.national_procedure(lay_thu_tuc("1.009999", "Thủ tục mới", field="Kinh doanh", online=False), MAPPING),
        domain.national_procedure(lay_thu_tuc("1.008888", "Thủ tục không thời hạn", unit="Tuần"), MAPPING),
    ]
    diff = domain.catalog_diff(local, records, evidence="DVCQG LayDanhSachTTHC/LayThuTuc", listed=["1.004194", "1.001193", "1.009999", "1.008888", "1.007777"])
    assert [e["code"] for e in diff["added"]] == ["1.009999"]
    new = diff["added"][0]["document"]
    assert (new["online_level"], new["time_limit"], new["evidence"]) == (
        "in_person", {"cutoff_rule": True, "verification_extra": 0, "amount": 3, "unit": "WORKING_DAY"}, "DVCQG LayDanhSachTTHC/LayThuTuc"
    )
    assert domain.document_problem(new) is None
    (changed,) = diff["changed"]
    fields = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert fields["time_limit"][0]["amount"] == 3 and fields["time_limit"][1]["amount"] == 5
    assert fields["field_code"] == (None, "G09-CA03") and "name" not in fields
    assert [e["code"] for e in diff["unchanged"]] == ["1.001193"]
    assert diff["local_only"] == [{"code": "LOCAL.KD.024", "name": local["LOCAL.KD.024"]["name"]}]  # kept, never removed
    (unusable,) = diff["unusable"]
    assert unusable["code"] == "1.008888" and "time_limit" in unusable["reason"] and unusable["notes"]


def test_a_code_listed_but_not_read_is_not_local_only() -> None:
    local = {"1.004194": seed("1.004194")}
    diff = domain.catalog_diff(local, [], evidence="x", listed=["1.004194"])
    assert diff == {"added": [], "changed": [], "unchanged": [], "local_only": [], "unusable": []}
    assert domain.catalog_diff(local, [], evidence="x")["local_only"] == [{"code": "1.004194", "name": "Đăng ký tạm trú"}]


def test_an_empty_fee_or_paper_list_says_nothing_and_the_local_ones_stay() -> None:
    local = seed("1.004873")  # a fee the provincial council sets
    record = lay_thu_tuc("1.004873", local["name"], field=local["field"], days=local["time_limit"]["amount"], fees=[], papers=[])
    found = domain.national_procedure(record, MAPPING)
    assert "fee_lines" not in found.fields and "components" not in found.fields
    merged = domain.merge_national(local, found, evidence="x")
    assert merged["fee_lines"] == local["fee_lines"] and merged["components"] == local["components"]
