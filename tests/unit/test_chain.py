"""Reporting's hash chain: any edit to a stored record is found."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from services.reporting.domain import GENESIS, ChainLink, canonical_time, first_break, link_hash


def make_chain(n: int) -> list[tuple[ChainLink, str]]:
    chain, prev = [], GENESIS
    for i in range(1, n + 1):
        link = ChainLink(i, f"e{i}", "vn.motcua.case.assigned.v1", "/motcua/workflow", canonical_time(datetime(2025, 1, i, tzinfo=UTC)), {"n": i, "tên": "Hùng"}, prev)
        prev = link_hash(link)
        chain.append((link, prev))
    return chain


def test_an_untouched_chain_is_intact() -> None:
    assert first_break(make_chain(5)) is None


def test_an_edited_payload_breaks_the_chain_at_that_record() -> None:
    chain = make_chain(5)
    link, stored = chain[2]
    chain[2] = (replace(link, data={**link.data, "tên": "Hưng"}), stored)
    assert first_break(chain) == 3


def test_a_removed_record_breaks_the_chain() -> None:
    chain = make_chain(5)
    del chain[1]
    assert first_break(chain) == 3


def test_a_rehashed_record_still_breaks_its_successor() -> None:
    chain = make_chain(4)
    link, _ = chain[1]
    forged = replace(link, data={"n": 99})
    chain[1] = (forged, link_hash(forged))
    assert first_break(chain) == 3


def test_the_hashed_time_does_not_depend_on_the_offset_it_was_written_with() -> None:
    from zoneinfo import ZoneInfo

    instant = datetime(2025, 3, 3, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert canonical_time(instant) == canonical_time(instant.astimezone(UTC)) == "2025-03-03T02:00:00.000000+00:00"
