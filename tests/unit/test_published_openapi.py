"""Each service's OpenAPI document, as integrators read it, is the one published in docs/openapi.

A change to a route, a parameter or a model changes the document; the change is then deliberate and
published (``motcua openapi --out docs/openapi``), never a side effect of moving code around.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

import pytest

from shared.cli import settings_class

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "openapi"
SERVICES = ("intake", "workflow", "digitization", "payments", "reporting")


@pytest.mark.parametrize("service", SERVICES)
def test_the_published_openapi_document_is_the_services_own(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    app = import_module(f"services.{service}.app").create_app(settings_class(service)())
    fresh = json.dumps(app.openapi(), ensure_ascii=False, indent=2) + "\n"
    published = (PUBLISHED / f"{service}.json").read_text(encoding="utf-8")
    assert fresh == published, f"{service}'s API changed: review it, then run 'motcua openapi --out docs/openapi'"
