"""Logs never print a whole citizen id number."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared.logs import configure_logging, mask_id_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CCCD 001203004567 nộp hồ sơ", "CCCD *********567 nộp hồ sơ"),
        ("CMND 123456789", "CMND ******789"),
        ("phone 0912345678 stays", "phone 0912345678 stays"),
        ("code 000.00.12.H56-250303-0001 stays", "code 000.00.12.H56-250303-0001 stays"),
        ("ids 001203004567,079088001234", "ids *********567,*********234"),
    ],
)
def test_id_numbers_are_masked_to_their_last_three_digits(text: str, expected: str) -> None:
    assert mask_id_numbers(text) == expected


def test_a_json_log_line_keeps_vietnamese_and_hides_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    configure_logging("intake", "INFO", json=True)
    try:
        logging.getLogger("test").info("Nhận hồ sơ của %s, CCCD %s", "Lê Thị Ánh", "001203004567")
        try:
            raise ValueError("bad id 001203004567")
        except ValueError:
            logging.getLogger("test").exception("failed")
    finally:
        logging.getLogger().handlers[:] = []
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "Nhận hồ sơ của Lê Thị Ánh, CCCD *********567"
    assert lines[0]["service"] == "intake" and lines[0]["level"] == "INFO"
    assert "001203004567" not in stream.getvalue()
