"""A service that has printed, exported and converted nothing yet holds none of the libraries that do it.

fpdf2 (with the fontTools modules it loads) is about 36 MiB of a process, Alembic 8-11, openpyxl 12, img2pdf with
pikepdf 6; together they were most of the gap between a service's idle memory and issue 18's 120 MiB. They are
imported by the first form, export, sheet or scan (``shared.pdf.form_pdf``, ``services/reporting/exports.py``,
``services/digitization/backfile.py``); this holds that line, in a fresh interpreter as ``motcua serve`` builds the app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from motcua.registry import SERVICES

HEAVY = ("alembic", "fpdf", "openpyxl", "img2pdf", "pikepdf")

_PROBE = """
import json, sys
from motcua.cli import service, settings_class
name = sys.argv[1]
service(name).create_app(settings_class(name)())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])))
"""


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_built_as_served_imports_no_printing_export_or_migration_library(name: str) -> None:
    env = {**os.environ, "ENVIRONMENT": "test"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, name, *HEAVY], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_probe_sees_a_library_once_something_uses_it() -> None:
    """The same probe after drawing one form: fpdf2 is then loaded (so the check above can fail)."""
    probe = _PROBE.replace(
        "print(", "from shared.pdf import form_pdf\nform_pdf(number='01', title='t', dossier_code='X')\nprint(", 1
    )
    env = {**os.environ, "ENVIRONMENT": "test"}
    out = subprocess.run(
        [sys.executable, "-c", probe, "intake", *HEAVY], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert "fpdf" in json.loads(out.stdout.strip().splitlines()[-1])
