"""The event schemas published in docs/events are the ones the code validates with."""

from __future__ import annotations

import json
from pathlib import Path

from shared.events import REGISTRY, write_schemas

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "events"


def test_published_schemas_match_the_code(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    fresh = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in tmp_path.glob("*.json")}
    published = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in PUBLISHED.glob("*.json")}
    assert published.keys() == fresh.keys(), "run 'make schemas' and commit docs/events"
    stale = [name for name in fresh if fresh[name] != published[name]]
    assert not stale, f"stale schemas (run 'make schemas'): {stale}"
    assert len(fresh) == len(REGISTRY)
