"""The DVCQG sync's pure rules (services/reporting/dvcqg.py): what each event owes, what a push says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from services.reporting import dvcqg
from services.reporting.dvcqg import SyncMapping

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "lgsp"
T0 = datetime(2026, 11, 26, 1, 15, 0, tzinfo=UTC)  # 08:15 in Vietnam
CODE, UNIT = "000.00.12.H56-261126-0001", "000.00.12.H56"
MAPPING = SyncMapping.of({"field_codes": {"Cư trú": "G09-CA-CT"}, "document_url": "https://motcua.example/d/{document_id}"})


def received(channel: str = "counter", **extra: object) -> dict:
    return {
        "dossier_code": CODE, "unit": UNIT, "occurred_at": T0.isoformat(), "procedure_code": "1.004194",
        "procedure_name": "Đăng ký tạm trú", "procedure_field": "Cư trú", "applicant_name": "Nguyễn Thị Hồng Nhung",
        "channel": channel, "received_at": T0.isoformat(), "appointment_at": (T0 + timedelta(days=3)).isoformat(),
        "fee_due": 15000, "fee_lines": [{"code": "CT-TT", "name": "Lệ phí đăng ký tạm trú", "amount": 15000}], **extra,
    }  # fmt: skip


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_timestamps_are_vietnamese_wall_clock_without_separators() -> None:
    assert dvcqg.dvcqg_time(T0) == "20261126081500"
    assert dvcqg.dvcqg_time(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)) == "20270101003000"  # a new year in Vietnam
    assert dvcqg.dvcqg_time(None) is None


def test_reception_owes_status_2_and_an_online_dossier_first_status_1_at_its_submission() -> None:
    counter = dvcqg.owed(dvcqg.RECEIVED, received(), T0, status_before=None, mapping=MAPPING)
    assert [(o.kind, o.status, o.changed_at) for o in counter] == [("status", 2, T0)]
    submitted = T0 - timedelta(minutes=40)
    online = dvcqg.owed(dvcqg.RECEIVED, received("online", submitted_at=submitted.isoformat()), T0, status_before=None, mapping=MAPPING)
    assert [(o.status, o.changed_at) for o in online] == [(1, submitted), (2, T0)]
    no_status_1 = SyncMapping.of({"registered_status": False})
    assert [o.status for o in dvcqg.owed(dvcqg.RECEIVED, received("online", submitted_at=submitted.isoformat()), T0,
                                         status_before=None, mapping=no_status_1)] == [2]  # fmt: skip


def test_a_status_push_only_when_the_status_changes_and_a_progress_step_for_processing_steps() -> None:
    first = dvcqg.owed(dvcqg.ASSIGNED, {"department": "Công an phường"}, at(5), status_before=2, mapping=MAPPING)
    assert [(o.kind, o.status) for o in first] == [("status", 4), ("progress", 4)]
    again = dvcqg.owed(dvcqg.ASSIGNED, {}, at(6), status_before=4, mapping=MAPPING)
    assert [(o.kind, o.status) for o in again] == [("progress", 4)]
    resumed = dvcqg.owed(dvcqg.CLOCK_RESUMED, {}, at(7), status_before=4, mapping=MAPPING)
    assert [(o.kind, o.status) for o in resumed] == [("status", 4)]  # an update event: the new appointment
    assert dvcqg.owed(dvcqg.DIGITIZED, {}, at(8), status_before=4, mapping=MAPPING) == []
    assert [o.status for o in dvcqg.owed(dvcqg.RETURNED, {}, at(9), status_before=9, mapping=MAPPING)] == [10]


def test_idempotency_key_is_code_status_and_time() -> None:
    owed = dvcqg.owed(dvcqg.ASSIGNED, {}, at(5), status_before=2, mapping=MAPPING)
    assert owed[0].key(CODE) == f"{CODE}:4:20261126082000000000"
    assert owed[1].key(CODE) == f"{CODE}:4:20261126082000000000:assigned"


def _events() -> list[tuple[str, dict, str | None]]:
    iso = lambda m: at(m).isoformat()  # noqa: E731
    return [
        (dvcqg.RECEIVED, received("online", submitted_at=iso(-30), identification="vneid_level2"), "portal"),
        (dvcqg.REUSED, {"occurred_at": iso(1), "document_id": "doc-kho", "component_name": "Căn cước công dân", "component_code": "TP1"}, "mc-1"),
        (dvcqg.DIGITIZED, {"occurred_at": iso(2), "document_id": "doc-scan", "stage": "intake", "component_name": "Tờ khai CT01",
                           "component_code": "TP2", "sha256": "ab", "pages": 1}, "mc-1"),
        (dvcqg.ASSIGNED, {"occurred_at": iso(3), "department": "Công an phường", "assignee": "cb-1"}, "cb-1"),
        (dvcqg.SUPPLEMENT_REQUESTED, {"occurred_at": iso(4), "reason": "Thiếu hợp đồng thuê nhà", "requested_items": ["Hợp đồng"],
                                      "supplement_number": 1}, "cb-1"),
        (dvcqg.SUPPLEMENTED, {"occurred_at": iso(60), "supplemented_at": iso(60)}, "mc-1"),
        (dvcqg.CLOCK_RESUMED, {"occurred_at": iso(61), "supplemented_at": iso(60), "due_at": (T0 + timedelta(days=4)).isoformat()}, None),
        (dvcqg.PAYMENT_REQUESTED, {"occurred_at": iso(62), "payment_id": "p1", "amount": "7000",
                                   "lines": [{"code": "CT-TT", "name": "Lệ phí đăng ký tạm trú", "quantity": 1, "amount": "7000"}]}, None),
        (dvcqg.PAYMENT_CONFIRMED, {"occurred_at": iso(63), "payment_id": "p1", "amount": "7000", "channel": "online", "provider": "vietqr"}, None),
        (dvcqg.DIGITIZED, {"occurred_at": iso(64), "document_id": "doc-kq", "stage": "result", "kind": "result", "sha256": "cd",
                           "pages": 1, "signed": True, "paper_code": "KQ-CT"}, None),
        (dvcqg.RESULT_READY, {"occurred_at": iso(65), "finished_at": iso(65), "timeliness": "early"}, "ct"),
        (dvcqg.RETURNED, {"occurred_at": iso(70), "returned_at": iso(70), "return_channel": "online", "timeliness": "early"}, "mc-1"),
    ]  # fmt: skip


def test_the_push_maps_every_fact_the_services_know() -> None:
    state = dvcqg.dossier_state(CODE, _events())
    payload = dvcqg.dossier_payload(state, 10, MAPPING)
    assert payload["KenhThucHien"] == 2 and payload["TrangThaiHoSo"] == 10
    assert (payload["MaTTHC"], payload["MaLinhVuc"], payload["TenLinhVuc"]) == ("1.004194", "G09-CA-CT", "Cư trú")
    assert payload["MaDinhDanhDV"] == UNIT
    assert payload["NgayNopHoSo"] == "20261126074500" and payload["NgayTiepNhan"] == "20261126081500"
    assert payload["NgayHenTra"] == "20261130081500"  # the appointment after the supplement
    assert (payload["NgayKetThucXuLy"], payload["NgayTra"]) == ("20261126092000", "20261126092500")
    assert "NgayTuChoi" not in payload
    assert payload["TaiKhoanDuocXacThucVoiVNeID"] == 1
    assert payload["DuocThanhToanTrucTuyen"] == 2  # paid online through the local gateway (VietQR)
    assert payload["DanhSachLePhi"] == [
        {"TenPhiLePhi": "Lệ phí đăng ký tạm trú", "MaPhiLePhi": "CT-TT", "Gia": 7000, "LoaiPhiLePhi": 2, "HinhThucThu": 2}
    ]
    papers = {p["TepDinhKemId"]: p for p in payload["TaiLieuNop"]}
    assert (papers["doc-kho"]["DuocLayTuKhoDMQG"], papers["doc-kho"]["DuocSoHoa"]) == (1, 1)
    assert (papers["doc-scan"]["DuocLayTuKhoDMQG"], papers["doc-scan"]["DuocSoHoa"]) == (0, 1)
    assert papers["doc-scan"]["DuongDanTaiTepTin"] == "https://motcua.example/d/doc-scan"
    assert payload["HoSoCoThanhPhanSoHoa"] == 1
    [supplement] = payload["DanhSachHoSoBoSung"]
    assert (supplement["NgayHenTraTruoc"], supplement["NgayHenTraMoi"]) == ("20261129081500", "20261130081500")
    assert supplement["NgayTiepNhanBoSung"] == "20261126091500" and supplement["TrangThaiBoSung"] == 1
    [result] = payload["DanhSachGiayToKetQua"]
    assert (result["GiayToId"], result["MaGiayToKetQua"], result["DuongDanTepTinKetQua"]) == (
        "doc-kq", "KQ-CT", "https://motcua.example/d/doc-kq")


def test_the_pushes_of_a_whole_life_satisfy_the_published_schema() -> None:
    schema = json.loads((SCHEMAS / "DongBoHoSoMC.item.schema.json").read_text(encoding="utf-8"))
    events = _events()
    for upto, status in ((1, 1), (1, 2), (4, 4), (5, 5), (7, 4), (11, 9), (12, 10)):
        state = dvcqg.dossier_state(CODE, events[:upto])
        jsonschema.validate(dvcqg.dossier_payload(state, status, MAPPING), schema)
    progress = json.loads((SCHEMAS / "CapNhatTienDoHoSoMC.item.schema.json").read_text(encoding="utf-8"))
    state = dvcqg.dossier_state(CODE, events[:4])
    step = dvcqg.progress_payload(state, dvcqg.ASSIGNED, 4, events[3][1], "cb-1", MAPPING)
    jsonschema.validate(step, progress)
    assert step["NoiDungXuLy"] == "Phân công xử lý: Công an phường" and step["NguoiXuLy"] == "cb-1"


def test_a_refused_dossier_carries_its_refusal_date_and_a_counter_dossier_no_vneid_flag_when_not_said() -> None:
    events = [(dvcqg.RECEIVED, received(), "mc-1"), (dvcqg.REJECTED, {"occurred_at": at(30).isoformat(), "reason": "Không đủ điều kiện"}, "ct")]
    payload = dvcqg.dossier_payload(dvcqg.dossier_state(CODE, events), 3, MAPPING)
    assert payload["NgayTuChoi"] == "20261126084500" and payload["KenhThucHien"] == 1
    assert "TaiKhoanDuocXacThucVoiVNeID" not in payload  # the receipt did not say how the applicant was identified
    assert payload["DanhSachLePhi"] == []  # a fee is due and was never requested: nothing to list yet
    chip = dvcqg.dossier_payload(dvcqg.dossier_state(CODE, [(dvcqg.RECEIVED, received(identification="chip_card"), "mc-1")]), 2, MAPPING)
    assert chip["TaiKhoanDuocXacThucVoiVNeID"] == 0


def test_a_free_dossier_lists_its_lines_at_zero_and_a_province_may_rename_fields() -> None:
    free = received(fee_due=0, fee_lines=[{"code": "HT-KS", "name": "Lệ phí đăng ký khai sinh", "amount": 0}])
    renamed = SyncMapping.of({"field_names": {"KenhThucHien": "HinhThuc", "Gia": "SoTien"}, "channels": {"counter": 0, "online": 1, "postal": 1}})
    payload = dvcqg.dossier_payload(dvcqg.dossier_state(CODE, [(dvcqg.RECEIVED, free, "mc-1")]), 2, renamed)
    assert payload["HinhThuc"] == 0 and "KenhThucHien" not in payload
    assert payload["DanhSachLePhi"] == [{"TenPhiLePhi": "Lệ phí đăng ký khai sinh", "MaPhiLePhi": "HT-KS", "SoTien": 0, "LoaiPhiLePhi": 2}]


def test_unknown_mapping_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        SyncMapping.of({"servcies": {}})


def test_on_time_is_acceptance_within_the_window_after_the_change() -> None:
    window = 300.0
    assert dvcqg.on_time("accepted", T0, T0 + timedelta(seconds=299), window_seconds=window, now=at(60)) is True
    assert dvcqg.on_time("accepted", T0, T0 + timedelta(seconds=301), window_seconds=window, now=at(60)) is False
    assert dvcqg.on_time("pending", T0, None, window_seconds=window, now=T0 + timedelta(seconds=10)) is None
    assert dvcqg.on_time("pending", T0, None, window_seconds=window, now=T0 + timedelta(seconds=400)) is False
    assert dvcqg.on_time("given_up", T0, None, window_seconds=window, now=T0 + timedelta(seconds=10)) is False


def test_lookup_found_reads_the_configured_keys() -> None:
    assert dvcqg.lookup_found({"error_code": 0, "result": [{"MaHoSo": CODE}]}, MAPPING)
    assert not dvcqg.lookup_found({"error_code": 0, "result": []}, MAPPING)
    assert not dvcqg.lookup_found({"error_code": 0}, MAPPING)


def test_transfers_are_processing_steps_and_withdrawal_and_stop_are_statuses() -> None:
    out = dvcqg.owed(dvcqg.TRANSFERRED, {"to_agency": "Chi cục Thuế"}, at(10), status_before=4, mapping=MAPPING)
    assert [(o.kind, o.status) for o in out] == [("progress", 4)]
    state = dvcqg.dossier_state(CODE, [(dvcqg.RECEIVED, received(), "mc-1")])
    step = dvcqg.progress_payload(state, dvcqg.TRANSFERRED, 4, {"occurred_at": at(10).isoformat(), "to_agency": "Chi cục Thuế",
                                                                 "step_due_at": at(60 * 24).isoformat()}, "cb-1", MAPPING)  # fmt: skip
    assert (step["NoiDungXuLy"], step["PhongBanXuLy"], step["NgayKetThucTheoQuyDinh"]) == (
        "Chuyển liên thông đến Chi cục Thuế", "Chi cục Thuế", "20261127081500")
    back = dvcqg.owed(dvcqg.TRANSFER_RETURNED, {"from_agency": "Chi cục Thuế"}, at(20), status_before=4, mapping=MAPPING)
    assert [(o.kind, o.status) for o in back] == [("progress", 4)]
    assert [o.status for o in dvcqg.owed(dvcqg.WITHDRAWN, {}, at(30), status_before=4, mapping=MAPPING)] == [7]
    assert [o.status for o in dvcqg.owed(dvcqg.STOPPED, {"reason": "x"}, at(30), status_before=5, mapping=MAPPING)] == [8]
    assert [o.status for o in dvcqg.owed(dvcqg.PAYMENT_AWAITED, {}, at(30), status_before=4, mapping=MAPPING)] == [6]
