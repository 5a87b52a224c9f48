"""The architecture is a test: the import contracts of pyproject.toml ([tool.importlinter]) hold.

shared (the platform library) imports no service and not the tools; no service imports the tools (motcua)
or another service; a service's domain module reaches no I/O or framework library, directly or through
what it imports. ``lint-imports`` (import-linter) checks them on the real tree; a tiny tree built here shows
that the same contracts fail on each kind of violation, so a passing run means something.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
CONTRACTS = {c["name"]: c for c in CONFIG["contracts"]}
SHARED_NO_SERVICES = "shared imports no service and not the tools"
SERVICES_NO_TOOLS = "no service imports the tools"
INDEPENDENT = "no service imports another"
PURE_DOMAIN = "domain modules import no I/O or framework library"


def lint_imports(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` (the venv's, beside this interpreter) in ``cwd``."""
    beside = Path(sys.executable).with_name("lint-imports")
    command = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert command, "lint-imports not found: install the dev extra (import-linter)"
    return subprocess.run(
        [command, "--no-cache", "--no-logo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_contracts_are_the_architectures() -> None:
    assert set(CONFIG["root_packages"]) == {"shared", "services", "motcua"}
    assert CONFIG["include_external_packages"] is True  # else external libraries cannot be forbidden
    assert set(CONTRACTS) == {SHARED_NO_SERVICES, SERVICES_NO_TOOLS, INDEPENDENT, PURE_DOMAIN}
    assert set(CONTRACTS[SHARED_NO_SERVICES]["forbidden_modules"]) == {"services", "motcua"}
    assert CONTRACTS[SERVICES_NO_TOOLS]["source_modules"] == ["services"]
    assert CONTRACTS[INDEPENDENT]["modules"] == ["services.*"]
    assert CONTRACTS[PURE_DOMAIN]["source_modules"] == ["services.*.domain"]
    assert set(CONTRACTS[PURE_DOMAIN]["forbidden_modules"]) >= {
        "sqlalchemy", "sqlmodel", "asyncpg", "aiokafka", "fastapi", "starlette", "httpx",
        "fpdf", "pyhanko", "segno", "boto3", "aiosmtplib",
    }  # fmt: skip
    for contract in CONTRACTS.values():  # a chain through another module counts as much as a direct import
        assert not contract.get("allow_indirect_imports") and not contract.get("ignore_imports")


def test_the_code_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"lint-imports found broken contracts:\n{output}"
    for name in CONTRACTS:
        assert f"{name} KEPT" in output, output


# --- the contracts bite ---------------------------------------------------------------------------------

CLEAN = {
    "shared/__init__.py": "",
    "shared/clock.py": "import datetime\n",
    "shared/web.py": "import fastapi\n",  # the platform may use frameworks; a domain may not reach them
    "services/__init__.py": "",
    "services/a/__init__.py": "",
    "services/a/domain.py": "from shared import clock\n",
    "services/a/api.py": "import fastapi\n\nfrom services.a import domain\nfrom shared import web\n",
    "services/b/__init__.py": "",
    "services/b/domain.py": "",
    "motcua/__init__.py": "",
    "motcua/registry.py": "import services.a.api\nimport shared.web\n",
}

VIOLATIONS = {
    "a domain imports a framework": ({"services/a/domain.py": "import fastapi\n"}, PURE_DOMAIN),
    "a domain reaches one through shared": ({"services/a/domain.py": "from shared import web\n"}, PURE_DOMAIN),
    "a domain imports an I/O library": ({"services/b/domain.py": "from sqlalchemy import text\n"}, PURE_DOMAIN),
    "shared imports a service": ({"shared/clock.py": "import services.a.domain\n"}, SHARED_NO_SERVICES),
    "shared imports the tools": ({"shared/tooling.py": "import motcua\n"}, SHARED_NO_SERVICES),
    "a service imports another": ({"services/b/domain.py": "from services.a import domain\n"}, INDEPENDENT),
    "a service imports the tools": ({"services/a/api.py": "import motcua.registry\n"}, SERVICES_NO_TOOLS),
}


def _toml(value: object) -> str:
    """A TOML value of the kinds the configuration uses (strings, booleans, lists of strings)."""
    return json.dumps(value, ensure_ascii=False)


def lint_tree(tmp_path: Path, files: dict[str, str]) -> tuple[int, str]:
    """Write the tree and pyproject's own [tool.importlinter] beside it; run lint-imports on it alone."""
    tree = tmp_path / "tree"
    for name, text in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text, encoding="utf-8")
    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {_toml(value)}" for key, value in CONFIG.items() if key != "contracts"]
    for contract in CONFIG["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]", *(f"{key} = {_toml(value)}" for key, value in contract.items())]
    config = tmp_path / "contracts.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the tiny shared/services/motcua, not the project's
    result = lint_imports(tree, str(config), env=env)  # the file named as `--config` did (now deprecated)
    return result.returncode, result.stdout + result.stderr


def test_a_tree_that_keeps_the_contracts_passes(tmp_path: Path) -> None:
    code, output = lint_tree(tmp_path, CLEAN)
    assert code == 0, output
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in output, output


@pytest.mark.parametrize("case", VIOLATIONS)
def test_each_kind_of_violation_breaks_its_contract(case: str, tmp_path: Path) -> None:
    change, broken = VIOLATIONS[case]
    code, output = lint_tree(tmp_path, {**CLEAN, **change})
    assert code != 0, output
    assert f"{broken} BROKEN" in output, output
    for name in set(CONTRACTS) - {broken}:
        assert f"{name} KEPT" in output, output
