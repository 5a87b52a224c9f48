"""What digitization's use cases need besides their input: the file store, the unit's signer, the settings, the pages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from services.digitization.settings import DigitizationSettings
from services.digitization.signing import UnitSigner
from services.digitization.storage import FileStore
from shared.pages import Pages
from shared.service import ServiceDeps, get_deps


@dataclass(frozen=True, kw_only=True)
class DigitizationDeps(ServiceDeps):
    """Built once per process (``create_app``); ``db`` and ``clock`` come from ``ServiceDeps``."""

    settings: DigitizationSettings
    files: FileStore
    signer: UnitSigner
    pages: Pages  # the templates of the pages for people (services/digitization/pages.py)

    @property
    def work_dir(self) -> Path:
        """Where temporary files go (the local store's file system, so moves are cheap)."""
        return self.settings.files_root / ".tmp"


Deps = Annotated[DigitizationDeps, Depends(get_deps)]
