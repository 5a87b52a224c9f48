"""Debian packages the tests need as tools (kubectl, Prometheus, libfaketime), unpacked under the venv, not installed.

Unpacking keeps a test run from installing system services or replacing files another package owns, and the
download happens once per venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def apt_get(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``apt-get`` non-interactively, output captured."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)


def ensure_package_lists(package: str) -> None:
    """``apt-get update`` unless apt already knows a candidate for ``package``."""
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=False).stdout
    if not policy.strip() or "Candidate: (none)" in policy:
        update = apt_get("update")
        assert update.returncode == 0, f"apt-get update failed:\n{update.stderr}"


def unpacked_package(package: str, into: str) -> Path:
    """The root of ``package``'s files unpacked under ``<venv>/<into>`` (downloaded with ``apt-get download`` once)."""
    unpacked = Path(sys.prefix) / into
    if unpacked.is_dir():
        return unpacked
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.fail(f"these tests need Debian's {package} (apt-get install {package})")
    ensure_package_lists(package)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)  # apt's _apt user writes the download
        download = apt_get("download", package, cwd=Path(tmp))
        assert download.returncode == 0, f"apt-get download {package} failed:\n{download.stdout}\n{download.stderr}"
        (deb,) = Path(tmp).glob(f"{package}_*.deb")
        staging = unpacked.with_name(unpacked.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        extract = subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], capture_output=True, text=True, check=False)
        assert extract.returncode == 0, extract.stderr
        staging.rename(unpacked)
    return unpacked
