"""A real Chromium through Playwright for the browser journeys (the `browser`
fixture in conftest), signing in, and axe-core's accessibility check."""

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django_otp.oath import totp

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("AIRLOCK_TEST_OUTPUT", "test-output")) / "screenshots"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@contextmanager
def launched_chromium() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now. Run
    through the DevTools protocol, which the page's strict CSP does not govern."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs it (npm ci)")
    page.evaluate(AXE.read_text())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {v['nodes'][0]['target']}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("x")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def code_from_key(key: str, steps_ahead: int = 0) -> str:
    raw = base64.b32decode(key + "=" * (-len(key) % 8))
    return f"{totp(raw, t0=-steps_ahead * 30):06d}"


def enrol(page, base: str, typo: bool = False) -> str:
    page.goto(f"{base}/mfa/enrol/")
    key = page.locator("#totp-key").inner_text()
    if typo:  # one digit off: the page keeps the key the phone scanned
        wrong = f"{(int(code_from_key(key)) + 1) % 10**6:06d}"
        page.get_by_label("Code from the app").fill(wrong)
        page.get_by_role("button", name="Confirm").click()
        page.get_by_text("does not match the key shown here").wait_for()
        assert page.locator("#totp-key").inner_text() == key
    page.get_by_label("Code from the app").fill(code_from_key(key))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("Save these backup codes now").wait_for()
    return key
