"""What the browser suite (tests/test_page.py) and the README's screenshots share: the browser,
the local stack with a slowed offline model, the page's steps, and a small API client.

    uv run --frozen python tests/page_support.py     # retakes docs/img/page-*.png
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, ViewportSize, expect

from chat_sessions.agent_config import build_agent
from chat_sessions_local.dev import local_stack
from chat_sessions_local.dynamodb_local import free_port
from chat_sessions_local.issuer import DevIssuer

WORD_DELAY_ENV = "CHAT_SESSIONS_OFFLINE_WORD_DELAY"
DESKTOP: ViewportSize = {"width": 1200, "height": 750}
PHONE: ViewportSize = {"width": 390, "height": 780}
IMAGES = Path(__file__).resolve().parents[1] / "docs" / "img"
COMPLETE = re.compile(r"^The answer is complete[.:]")
"""The status line once an answer completed ("The answer is complete: 12 words.")."""
LIVE_ANSWER = "#live .message.assistant:not(.pending) .text"


def chromium_path() -> str:
    """Debian's Chromium (Playwright never downloads a browser here). Missing in CI is a failure:
    .ci/run installs it, so a skip there would hide a broken setup."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: the browser suite needs it (.ci/run installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs these tests")


def launch(playwright: Playwright) -> Browser:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])


@contextmanager
def checked_page(browser: Browser, **context: Any) -> Iterator[Page]:
    """A tab in a fresh context (its own storage; ``context``: Playwright's options, a desktop
    viewport unless given), closed on exit. A script error or a console message about the
    Content Security Policy (Trusted Types included) fails the test it happened in."""
    opened_context = browser.new_context(**{"viewport": DESKTOP, **context})
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text or "Trusted" in text:
            problems.append(text)

    try:
        opened = opened_context.new_page()
        opened.on("console", on_console)
        opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        yield opened
    finally:
        opened_context.close()
    assert problems == []


def set_word_delay(seconds: float) -> None:
    """The offline model's pause per word, for the turns that start from now on (the agent is
    built once per process, so it is built again)."""
    os.environ[WORD_DELAY_ENV] = str(seconds)
    build_agent.cache_clear()


@contextmanager
def page_stack(word_delay: float) -> Iterator[tuple[DevIssuer, str]]:
    """The real local stack (DynamoDB Local, the API server with the chat page) on free ports."""
    set_word_delay(word_delay)
    try:
        with local_stack(port=free_port(), dynamodb_port=None) as (_, issuer, base_url):
            yield issuer, base_url
    finally:
        os.environ.pop(WORD_DELAY_ENV, None)
        build_agent.cache_clear()


def new_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Api:
    """The REST API as one user, for what a test sets up or checks behind the page's back."""

    base_url: str
    token: str

    def call(self, method: str, path: str, status: int = 200, **options: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.request(method, f"{self.base_url}{path}", headers=headers, **options)
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else None

    def messages(self, session_id: str, **query: Any) -> list[dict[str, Any]]:
        path = f"/v1/sessions/{quote(session_id, safe='')}/messages"
        listed: list[dict[str, Any]] = self.call("GET", path, params={"limit": 100, **query})[
            "messages"
        ]
        return listed

    def session(self, session_id: str, status: int = 200) -> Any:
        return self.call("GET", f"/v1/sessions/{quote(session_id, safe='')}", status)


def sign_in(page: Page, base_url: str, user: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#whoami")).to_have_text(user)


def send(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send").click()


def wait_complete(page: Page, timeout_ms: float = 30_000) -> None:
    expect(page.locator("#status")).to_have_text(COMPLETE, timeout=timeout_ms)


def follow_answer(page: Page, timeout_s: float = 30) -> list[str]:
    """The live answer's text as it streams, sampled until the answer completes (what a reader
    saw: each sample should be a prefix of the final answer)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text, status = page.evaluate(
            f"""() => [[...document.querySelectorAll("{LIVE_ANSWER}")]
                        .map((node) => node.textContent).join(""),
                       document.getElementById("status").textContent]"""
        )
        if COMPLETE.match(status):
            return seen
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        page.wait_for_timeout(30)
    raise AssertionError(f"the answer did not complete in {timeout_s} s; seen: {seen[-1:]}")


def open_session_id(page: Page) -> str:
    """The session the page shows (its address names it: ``#/s/<id>``)."""
    fragment = str(page.evaluate("location.hash"))
    assert fragment.startswith("#/s/"), fragment
    return str(page.evaluate("decodeURIComponent(location.hash.slice(4))"))


def screenshots() -> None:
    """The README's two pictures, from a real run of the page on the local stack."""
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with page_stack(word_delay=0.0) as (issuer, base_url), sync_playwright() as playwright:
        api = Api(base_url, issuer.mint("ada"))
        for title, metadata in [
            ("Lisbon weekend", {"app": "travel"}),
            ("Quarterly report outline", {"project": "apollo", "team": "finance"}),
            ("Recipe ideas", {}),
        ]:
            api.call("POST", "/v1/sessions", 201, json={"title": title, "metadata": metadata})
        browser = launch(playwright)
        page = browser.new_page(viewport=DESKTOP)
        sign_in(page, base_url, "ada")
        send(page, "What time is it in UTC right now?")
        wait_complete(page)
        send(page, "Thanks! Can you plan a short walk for this afternoon?")
        wait_complete(page)
        page.get_by_role("button", name="Edit this message").last.click()
        page.get_by_role("textbox", name="Edited message").fill("Plan a short walk, please.")
        page.get_by_role("button", name="Send edit").click()
        wait_complete(page)
        page.locator("#messages details.tool summary").first.click()
        page.locator("#history").evaluate("node => { node.scrollTop = node.scrollHeight }")
        page.mouse.move(0, 0)
        page.locator("#composer-input").blur()
        page.screenshot(path=str(IMAGES / "page-desktop.png"))
        phone = browser.new_page(viewport=PHONE, device_scale_factor=1)
        sign_in(phone, base_url, "ada")
        phone.goto(page.url)
        wait_for_history(phone)
        phone.locator("#composer-input").blur()
        phone.screenshot(path=str(IMAGES / "page-phone.png"))
        browser.close()
    for name in ("page-desktop.png", "page-phone.png"):
        print(f"{IMAGES / name}: {(IMAGES / name).stat().st_size // 1024} KiB")


def wait_for_history(page: Page) -> None:
    expect(page.locator("#messages .message").first).to_be_visible()


if __name__ == "__main__":
    screenshots()
