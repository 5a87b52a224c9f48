"""Each service's OpenAPI document, as integrators read it, is the one published in docs/openapi.

A change to a route, a parameter or a model changes the document; the change is then deliberate and
published (``motcua openapi --out docs/openapi``), never a side effect of moving code around. The test
runs that very command for each service of the registry and compares what it writes with what is published.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from motcua.cli import main
from motcua.registry import SERVICES

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "openapi"


@pytest.mark.parametrize("service", SERVICES)
def test_the_published_openapi_document_is_the_services_own(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["openapi", "--out", str(tmp_path), service]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / f"{service}.json")]
    fresh = (tmp_path / f"{service}.json").read_text(encoding="utf-8")
    published = (PUBLISHED / f"{service}.json").read_text(encoding="utf-8")
    assert fresh == published, f"{service}'s API changed: review it, then run 'motcua openapi --out docs/openapi'"


def test_the_command_renders_as_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indented UTF-8 JSON (Vietnamese as is), one newline at the end, built with ENVIRONMENT=test whatever is set."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert main(["openapi", "--out", str(tmp_path), "intake"]) == 0
    text = (tmp_path / "intake.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "openapi": ') and text.endswith("}\n") and not text.endswith("\n\n")
    assert "\\u" not in text
    assert (PUBLISHED / "intake.json").read_text(encoding="utf-8") == text
    assert main(["openapi", "--out", str(tmp_path), "nowhere"]) == 2
