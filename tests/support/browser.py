"""A real browser for the tests of the pages people see: Debian's Chromium driven by Playwright for Python.

Nothing is fetched from outside Debian and PyPI. Chromium is Debian's package (``/usr/bin/chromium``): when it is
missing, ``apt-get update`` then ``apt-get install -y --no-install-recommends chromium`` (CI runs as root on a fresh
machine). Unlike Prometheus or kubectl (``tests/support/debian.py`` unpacks their single ``.deb`` under the venv),
Chromium needs a few dozen shared libraries from other packages, so it is installed, not unpacked; so are
``zbar-tools`` (``zbarimg``, its libraries) and ``poppler-utils`` (``pdftoppm``). ``playwright install`` is never run:
the browser is launched from ``executable_path=/usr/bin/chromium`` with flags that keep it off the network.

The fixtures (``browser_page``, ``chromium``, ``playwright_driver``) are in ``tests/support/browser_plugin.py``,
which a test module names as a plugin (``tests/conftest.py`` does not load it)::

    pytest_plugins = ("tests.support.browser_plugin",)

    async def test_status_page(browser_page: Page, server_url: str) -> None:
        await browser_page.goto(f"{server_url}/tra-cuu/H01.01-260301-0001")
        await assert_page_for_people(browser_page, origin=server_url)  # lang="vi", labels, same origin, no alert
        await screenshots(browser_page, "status")  # test-artifacts/pages/status-360.png, -1280.png; no sideways scroll
        assert decode_qr_pdf(receipt_pdf) == [f"{server_url}/tra-cuu/H01.01-260301-0001"]

Every page the fixture gives records its requests, dialogs (``alert()``) and console errors: ``recorded(page)``.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary
from xml.etree import ElementTree

import pytest
from playwright.async_api import Dialog, Page

from tests.support.debian import apt_get

CHROMIUM = Path("/usr/bin/chromium")
ZBARIMG = Path("/usr/bin/zbarimg")
PDFTOPPM = Path("/usr/bin/pdftoppm")
# Debian's package for each tool the page tests run.
PACKAGES = {CHROMIUM: "chromium", ZBARIMG: "zbar-tools", PDFTOPPM: "poppler-utils"}
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home: the machine's network is closed
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"
NARROW, WIDE = 360, 1280  # px: a small phone, a desk
_APT_LOCK = Path(tempfile.gettempdir()) / "motcua-apt.lock"


# ---- Debian's tools -----------------------------------------------------------------------------------------------


def ensure_debian_tools(*binaries: Path) -> None:
    """Install the Debian packages of the ``binaries`` that are missing (all of ``PACKAGES`` when none named).

    ``apt-get update`` first (a machine's package lists may be stale), then ``apt-get install -y
    --no-install-recommends``; a file lock keeps two test processes of this machine from running apt at once, and
    apt waits for a lock another program holds. Fails the test (never skips it) when this cannot be done.
    """
    wanted = binaries or tuple(PACKAGES)
    if all(binary.exists() for binary in wanted):
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        missing = " ".join(PACKAGES[b] for b in wanted if not b.exists())
        pytest.fail(f"these tests need Debian's {missing}: apt-get install --no-install-recommends {missing}")
    with _APT_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [PACKAGES[b] for b in wanted if not b.exists()]  # another process may have installed them meanwhile
        if not missing:
            return
        update = apt_get("-o", "DPkg::Lock::Timeout=600", "update")
        assert update.returncode == 0, f"apt-get update failed:\n{update.stderr}"
        install = apt_get("-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", *missing)
        assert install.returncode == 0, f"apt-get install {' '.join(missing)} failed:\n{install.stdout}\n{install.stderr}"
    for binary in wanted:
        assert binary.exists(), f"{PACKAGES[binary]} installed but {binary} is missing"


# ---- the browser --------------------------------------------------------------------------------------------------


@dataclass
class Recording:
    """What a page did: every URL it requested, the dialogs scripts opened, the console's errors (CSP reports)."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


_RECORDINGS: WeakKeyDictionary[Page, Recording] = WeakKeyDictionary()


def recorded(page: Page) -> Recording:
    """The recording of a page opened by ``record`` (the ``browser_page`` fixture does)."""
    return _RECORDINGS[page]


def record(page: Page) -> Recording:
    """Start recording ``page``'s requests, dialogs (dismissed at once) and console errors."""
    recording = Recording()
    _RECORDINGS[page] = recording

    async def _dialog(dialog: Dialog) -> None:
        recording.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("request", lambda request: recording.requests.append(request.url))
    page.on("dialog", _dialog)
    page.on("console", lambda msg: recording.console_errors.append(msg.text) if msg.type == "error" else None)
    return recording


# ---- checks a person would make -----------------------------------------------------------------------------------


async def screenshots(page: Page, name: str, *, into: Path = ARTIFACTS) -> tuple[Path, Path]:
    """Full-page screenshots at 360 px and 1280 px (``<into>/<name>-360.png``, ``-1280.png``).

    At 360 px the page must not scroll sideways: nothing may be wider than a small phone's screen.
    """
    into.mkdir(parents=True, exist_ok=True)
    height = (page.viewport_size or {}).get("height", 900)
    paths = []
    for width in (NARROW, WIDE):
        await page.set_viewport_size({"width": width, "height": height})
        if width == NARROW:
            overflow = await page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert overflow[0] <= overflow[1], f"{name}: {overflow[0]} px of content in {overflow[1]} px: it scrolls sideways"
        path = into / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    return paths[0], paths[1]


_UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes((el.getAttribute('type') || '').toLowerCase()))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML)"""


async def assert_labelled_and_vietnamese(page: Page) -> None:
    """``<html lang="vi">``, and every form field a person fills in has a label (or an aria label)."""
    lang = await page.evaluate("() => document.documentElement.getAttribute('lang')")
    assert lang == "vi", f'the page says lang="{lang}", not "vi"'
    unlabelled = await page.evaluate(_UNLABELLED)
    assert not unlabelled, f"fields without a label: {unlabelled}"


def assert_same_origin(urls: Iterable[str], origin: str) -> None:
    """Every request stayed on ``origin`` (``data:`` URLs, which fetch nothing, aside)."""
    want = urlsplit(origin)
    outside = [
        url for url in urls
        if not url.startswith(("data:", "about:"))
        and (urlsplit(url).scheme, urlsplit(url).netloc) != (want.scheme, want.netloc)
    ]  # fmt: skip
    assert not outside, f"requests left {origin}: {outside}"


async def assert_page_for_people(page: Page, *, origin: str) -> None:
    """The checks every page passes: Vietnamese, labelled fields, nothing fetched from outside, no script ran."""
    await assert_labelled_and_vietnamese(page)
    recording = recorded(page)
    assert_same_origin(recording.requests, origin)
    assert not recording.dialogs, f"a script ran: {recording.dialogs}"


# ---- QR codes -----------------------------------------------------------------------------------------------------


def _zbarimg(path: Path, *options: str) -> bytes | None:
    """zbarimg's output for the QR codes of ``path``; None when it finds none."""
    ensure_debian_tools(ZBARIMG)
    result = subprocess.run(
        [str(ZBARIMG), "--quiet", "-Sdisable", "-Sqrcode.enable", *options, str(path)], capture_output=True, check=False
    )
    if result.returncode == 4:  # zbarimg: the image holds no symbol
        return None
    assert result.returncode == 0, f"zbarimg failed on {path}: {result.stderr.decode(errors='replace')}"
    return result.stdout


def decode_qr_png(path: Path) -> list[str]:
    """The payloads of every QR code zbar (Debian's ``zbarimg``) finds in the image; [] for none.

    zbar guesses a text encoding for the bytes of a QR code (UTF-8 often comes out as Shift JIS), so a single code
    is read again with ``-Sbinary``, which gives its bytes as they are, decoded here as UTF-8. Several codes in one
    image come from zbar's XML listing (exact for ASCII payloads such as URLs and VietQR strings).
    """
    listing = _zbarimg(path, "--xml")
    if listing is None:
        return []
    namespace = "{http://zbar.sourceforge.net/2008/barcode}"
    symbols = ElementTree.fromstring(listing).iter(f"{namespace}data")
    payloads = [
        base64.b64decode(data.text or "").decode(errors="replace") if data.get("format") == "base64" else (data.text or "")
        for data in symbols
    ]
    if len(payloads) == 1:
        raw = _zbarimg(path, "--raw", "-Sbinary")
        assert raw is not None
        return [raw.decode("utf-8")]
    return [payload.strip() for payload in payloads]


def decode_qr_pdf(path: Path, *, page: int = 1, dpi: int = 200) -> list[str]:
    """The QR payloads on one page of a PDF, rendered to PNG by poppler's ``pdftoppm`` then read by zbar."""
    ensure_debian_tools(PDFTOPPM, ZBARIMG)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "page"
        result = subprocess.run(
            [str(PDFTOPPM), "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile", str(path), str(prefix)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"pdftoppm failed on {path}: {result.stderr}"
        return decode_qr_png(prefix.with_suffix(".png"))
