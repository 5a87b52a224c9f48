"""The browser fixtures: ``pytest_plugins = ("tests.support.browser_plugin",)`` in a test module that needs them.

Kept apart from the helpers of ``tests/support/browser.py`` so that pytest can load this module as a plugin
without it having been imported first (the helpers are imported by test modules).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    WIDE,
    ensure_debian_tools,
    record,
)


@pytest.fixture(scope="session")
async def playwright_driver() -> AsyncIterator[Playwright]:
    """Playwright's driver (a Node process shipped in the PyPI wheel), for the whole session."""
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
async def chromium(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, installed when missing; one per test session."""
    ensure_debian_tools(CHROMIUM)
    browser = await playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_FLAGS), chromium_sandbox=False
    )
    yield browser
    await browser.close()


@pytest.fixture
async def browser_page(chromium: Browser) -> AsyncIterator[Page]:
    """A fresh page (its own context: no cookies of other tests), Vietnamese locale, 1280 px wide, recorded."""
    context = await chromium.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", viewport={"width": WIDE, "height": 900})
    page = await context.new_page()
    record(page)
    yield page
    await context.close()
