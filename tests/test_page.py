"""The chat page (docs/page.md).

First what serves it (``web.page.PageMiddleware``, ``web.config``: no browser). Then the browser
suite (``-m browser``): headless Chromium drives the page on the real local stack (DynamoDB Local
and the local API server, the offline model slowed per word so streaming is visible). Each test
signs in as its own user.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws
from page_support import (
    PHONE,
    Api,
    checked_page,
    follow_answer,
    launch,
    new_user,
    open_session_id,
    page_stack,
    send,
    set_word_delay,
    sign_in,
    wait_complete,
)
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from chat_sessions.agent_config import build_agent, offline_reply
from chat_sessions.chat_app import create_chat_app
from chat_sessions.web import config as page_config
from chat_sessions.web.config import PageConfig, PageConfigError, deployed_page_config
from chat_sessions.web.page import STATIC, PageMiddleware, content_security_policy
from chat_sessions_local.issuer import DevIssuer
from chat_sessions_local.server import create_app

LOCAL = {"auth": "dev", "api_url": "", "chat_url": ""}
COGNITO_CLAIMS: dict[str, Any] = {"cognito:username": "pia", "token_use": "id"}
COGNITO = {
    "auth": "cognito",
    "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com",
    "chat_url": "https://xyz.lambda-url.eu-west-1.on.aws/",
    "cognito": {"region": "eu-west-1", "client_id": "4abcdefghij1234567890"},
}
MODULES = sorted(path.name for path in STATIC.glob("*.js"))
SSE = "text/event-stream"


async def behind(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the page: says it was reached."""
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def serving(config: Callable[[], dict[str, Any]] = lambda: LOCAL) -> TestClient:
    return TestClient(PageMiddleware(behind, config=config))


# ------------------------------------------------------------------------ serving the page


def test_the_page_and_its_files_are_served_with_their_types() -> None:
    client = serving()

    index = client.get("/")
    script = client.get("/page/app.js")
    style = client.get("/page/app.css")
    icon = client.get("/page/icon.svg")

    assert (index.status_code, index.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert index.text == (STATIC / "index.html").read_text()
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert icon.headers["content-type"] == "image/svg+xml"
    for answer in (index, script, style, icon):
        assert answer.headers["cache-control"] == "no-cache"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    for module in MODULES:
        served = client.get(f"/page/{module}")
        assert (served.status_code, served.headers["content-type"]) == (
            200,
            "text/javascript; charset=utf-8",
        )
        assert served.text == (STATIC / module).read_text()


def test_the_page_loads_app_js_and_preloads_every_module_it_imports() -> None:
    markup = _Markup()
    markup.feed((STATIC / "index.html").read_text())
    scripts = [attrs["src"] for tag, attrs in markup.tags if tag == "script"]
    preloaded = [
        str(attrs["href"])
        for tag, attrs in markup.tags
        if tag == "link" and attrs.get("rel") == "modulepreload"
    ]
    imported = {
        name
        for module in MODULES
        for name in re.findall(r'from "\./([\w-]+\.js)"', (STATIC / module).read_text())
    }

    assert scripts == ["/page/app.js"]
    assert sorted(preloaded) == sorted(f"/page/{name}" for name in MODULES if name != "app.js")
    assert imported == set(MODULES) - {"app.js"}  # every module is used, none is missing


def test_head_and_revalidation() -> None:
    client = serving()
    full = client.get("/page/app.js")

    head = client.head("/page/app.js")
    again = client.get("/page/app.js", headers={"If-None-Match": full.headers["etag"]})

    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(full.content))
    assert (again.status_code, again.content) == (304, b"")


def test_the_config_is_served_as_json() -> None:
    assert serving().get("/page/config.json").json() == LOCAL
    assert serving(lambda: COGNITO).get("/page/config.json").json() == COGNITO


@pytest.mark.parametrize(
    "path",
    [
        "/page/",
        "/page/nothing.js",
        "/page/%2e%2e/page.py",
        "/page/%2e%2e/%2e%2e/chat_app.py",
        "/page/..%2fconfig.py",
        "/page/static/app.js",
        "/page/page.py",
        "/page/__init__.py",
        "/page//etc/passwd",
    ],
)
def test_no_other_file_is_reachable(path: str) -> None:
    answer = serving().get(path)
    status, body = raw_get(path.replace("%2e", ".").replace("%2f", "/"))  # as a server decodes

    assert answer.status_code == status == 404
    assert answer.json()["error"]["code"] == json.loads(body)["error"]["code"] == "route_not_found"


def raw_get(path: str) -> tuple[int, bytes]:
    """The middleware's answer to a path exactly as given (a client would normalise dots)."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    asyncio.run(PageMiddleware(behind, config=lambda: LOCAL)(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_other_methods_on_the_page_are_405_and_other_paths_reach_the_app() -> None:
    client = serving()

    refused = client.post("/page/app.js")
    passed = [client.get(path) for path in ("/v1/sessions", "/pages", "/index.html", "/page")]

    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
    assert refused.json()["error"]["code"] == "method_not_allowed"
    assert [(a.status_code, a.text) for a in passed] == [(299, "app")] * 4


def test_the_policy_allows_only_this_origin_and_the_configured_ones() -> None:
    local = serving().get("/").headers["content-security-policy"]
    deployed = serving(lambda: COGNITO).get("/").headers["content-security-policy"]

    directives = dict(d.split(" ", 1) for d in local.split("; "))
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"  # no string reaches a sink
    assert directives["trusted-types"] == "'none'"
    assert "connect-src 'self' https://abc123.execute-api.eu-west-1.amazonaws.com " in deployed
    assert "https://xyz.lambda-url.eu-west-1.on.aws " in deployed
    assert "https://cognito-idp.eu-west-1.amazonaws.com;" in deployed


@pytest.mark.parametrize(
    "bad",
    [
        {"auth": "cognito", "api_url": "", "chat_url": ""},  # no pool client
        {"auth": "dev", "api_url": "https://x.example; script-src *", "chat_url": ""},
        {"auth": "dev", "api_url": "javascript:alert(1)", "chat_url": ""},
        {**COGNITO, "cognito": {"region": "eu-west-1 *", "client_id": "x"}},
        {"auth": "sso", "api_url": "", "chat_url": ""},
    ],
)
def test_a_bad_config_is_a_configuration_error_not_a_header(bad: dict[str, Any]) -> None:
    answer = serving(lambda: bad).get("/")

    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "configuration_error"
    assert "content-security-policy" not in answer.headers


def test_the_deployed_config_comes_from_ssm_once(monkeypatch: pytest.MonkeyPatch) -> None:
    page_config.load_deployed_config.cache_clear()
    monkeypatch.delenv(page_config.PARAMETER_ENV, raising=False)
    assert deployed_page_config() == {"auth": "token", "api_url": "", "chat_url": ""}

    page_config.load_deployed_config.cache_clear()
    monkeypatch.setenv(page_config.PARAMETER_ENV, "/chat-sessions/page-config")
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(
            Name="/chat-sessions/page-config", Value=json.dumps(COGNITO), Type="String"
        )
        first = deployed_page_config()
        ssm.delete_parameter(Name="/chat-sessions/page-config")
        second = deployed_page_config()  # cached for the process
    page_config.load_deployed_config.cache_clear()

    assert first == second == COGNITO


@pytest.mark.parametrize(
    "value",
    ["not json", "[1]", json.dumps({"auth": "nope"}), json.dumps(LOCAL)],  # dev: local only
)
def test_a_bad_parameter_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    page_config.load_deployed_config.cache_clear()
    monkeypatch.setenv(page_config.PARAMETER_ENV, "/chat-sessions/page-config")
    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/chat-sessions/page-config", Value=value, Type="String"
        )
        with pytest.raises(PageConfigError) as error:
            deployed_page_config()
    page_config.load_deployed_config.cache_clear()

    assert error.value.code == "configuration_error"


def test_the_deployed_chat_app_mints_no_tokens(
    dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed, the page is in token (or Cognito) mode and ``POST /dev/token`` is no route."""
    page_config.load_deployed_config.cache_clear()
    monkeypatch.delenv(page_config.PARAMETER_ENV, raising=False)
    app = create_chat_app(
        agent=build_agent, verifier=dev_issuer.verifier, page_config=deployed_page_config
    )
    headers = {"Authorization": f"Bearer {dev_issuer.mint('mallory')}"}
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        minted = client.post("/dev/token", json={"user": "mallory"}, headers=headers)
        anonymous = client.post("/dev/token", json={"user": "mallory"})
        config = client.get("/page/config.json").json()
    page_config.load_deployed_config.cache_clear()

    assert minted.status_code == 404
    assert minted.json()["error"]["code"] == "route_not_found"
    assert anonymous.status_code in (401, 404) and "token" not in anonymous.json()
    assert config["auth"] == "token"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example:8000",
        "localhost.evil.example",
        "testserver:8000",
        "[::1]:8000",
    ],
)
def test_the_local_server_answers_only_to_loopback_names(dev_issuer: DevIssuer, host: str) -> None:
    """DNS rebinding: a page on another name pointed at 127.0.0.1 gets neither a token nor
    anything else."""
    with TestClient(create_app(dev_issuer), base_url="http://127.0.0.1:8000") as client:
        minted = client.post("/dev/token", json={"user": "mallory"}, headers={"Host": host})
        others = [client.get(path, headers={"Host": host}) for path in ("/", "/v1/sessions")]
        loopback = [
            client.get("/.well-known/jwks.json", headers={"Host": name}).status_code
            for name in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "127.0.0.1")
        ]

    for refused in (minted, *others):
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"]["code"] == "untrusted_host"
    assert loopback == [200] * 4


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() -> None:
    markup = _Markup()
    markup.feed((STATIC / "index.html").read_text())
    script = "\n".join((STATIC / module).read_text() for module in MODULES)

    for tag, attrs in markup.tags:
        assert not [a for a in attrs if a.startswith("on") or a == "style"], tag
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/page/")
        for link in (attrs.get("src"), attrs.get("href")):
            assert link is None or link.startswith(("/page/", "#")), link
    # Data is rendered as text only, never parsed as markup.
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    assert "url(http" not in (STATIC / "app.css").read_text()


def test_the_modules_stay_legible() -> None:
    """Short modules, short lines: each file can be read on its own."""
    for module in MODULES:
        lines = (STATIC / module).read_text().splitlines()
        assert len(lines) <= 400, module
        assert [n for n, line in enumerate(lines, 1) if len(line) > 100] == [], module


def test_every_control_has_a_label() -> None:
    markup = _Markup()
    markup.feed((STATIC / "index.html").read_text())
    labelled = {attrs.get("for") for tag, attrs in markup.tags if tag == "label"}

    controls = [attrs for tag, attrs in markup.tags if tag in ("input", "textarea", "select")]

    assert len(controls) >= 8
    for attrs in controls:  # buttons: their text, or an aria-label (checked in the browser)
        assert attrs.get("id") in labelled or attrs.get("aria-label"), attrs


def test_the_local_page_config_validates() -> None:
    from chat_sessions_local.server import local_page_config

    assert PageConfig.model_validate(local_page_config()).auth == "dev"
    assert "connect-src 'self';" in content_security_policy(
        PageConfig.model_validate(local_page_config())
    )


# -------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[DevIssuer, str]]:
    with page_stack(word_delay=0.05) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


@pytest.fixture
def base_url(stack: tuple[DevIssuer, str]) -> str:
    set_word_delay(0.05)  # what a test changed, back
    return stack[1]


@pytest.fixture
def issuer(stack: tuple[DevIssuer, str]) -> DevIssuer:
    return stack[0]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (own storage); fails the test on a script error or a policy violation."""
    with checked_page(browser) as opened:
        yield opened


LOW_CONTRAST = """() => {
    const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
    const luminance = ([r, g, b]) => {
        const f = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (node) => {
        for (let n = node; n; n = n.parentElement) {
            const c = rgb(getComputedStyle(n).backgroundColor);
            if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const text = walker.currentNode;
        const node = text.parentElement;
        if (!text.data.trim() || !node.checkVisibility() || node.closest(":disabled")) continue;
        const style = getComputedStyle(node);
        const pair = [luminance(rgb(style.color)), luminance(background(node))];
        const [hi, lo] = pair.sort((a, b) => b - a);
        const ratio = (hi + 0.05) / (lo + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
        if (ratio < (large ? 3 : 4.5)) {
            found.push(`${ratio.toFixed(2)} ${text.data.trim().slice(0, 30)}`);
        }
    }
    return found;
}"""
"""Visible text whose contrast with its background is below WCAG AA (disabled controls are
exempt)."""


def api_of(issuer: DevIssuer, base_url: str, user: str) -> Api:
    return Api(base_url, issuer.mint(user))


@pytest.mark.browser
@pytest.mark.integration
def test_sign_in_survives_a_reload_and_sign_out_forgets_it(page: Page, base_url: str) -> None:
    user = new_user("ann")
    sign_in(page, base_url, user)
    page.reload()
    expect(page.locator("#whoami")).to_have_text(user)

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("textbox", name="User name")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to chat-sessions")).to_be_visible()


@pytest.mark.browser
@pytest.mark.integration
def test_a_dev_user_name_is_checked_by_the_server(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    page.evaluate("document.getElementById('dev-user').removeAttribute('pattern')")
    page.get_by_role("textbox", name="User name").fill("no spaces allowed")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#signin-error")).to_have_text("the request is invalid")


@pytest.mark.browser
@pytest.mark.integration
def test_a_new_chat_streams_its_answer_token_by_token(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("bea")
    message = "Please say something long enough to watch it stream in"
    full = offline_reply(message)
    sign_in(page, base_url, user)

    send(page, message)
    streaming = page.locator("#live .message.assistant.streaming .text")
    expect(streaming).to_contain_text("(offline model)")
    partial = streaming.text_content() or ""
    busy = page.locator("#live .message.assistant.streaming").get_attribute("aria-busy")
    expect(page.locator(".session.current .busy-dot")).to_have_text("answering")
    seen = follow_answer(page)

    assert full.startswith(partial) and len(partial) < len(full)
    assert seen and all(full.startswith(text) for text in seen)  # token by token, none twice
    assert busy == "true"
    words = len(full.split())
    expect(page.locator("#status")).to_have_text(f"The answer is complete: {words} words.")
    answers = page.locator("#messages .message.assistant .text")
    expect(answers).to_have_count(1)
    expect(answers).to_have_text(full)
    expect(page.locator("#messages .message.user .text")).to_have_text(message)
    expect(page.locator("#live .message")).to_have_count(0)
    session_id = open_session_id(page)
    expect(page.locator(".session.current .session-title")).to_have_text(message)
    expect(page.locator(".session.current .busy-dot")).to_have_count(0)
    stored = api_of(issuer, base_url, user).messages(session_id)
    assert [(m["role"], m["text"]) for m in stored] == [("user", message), ("assistant", full)]


@pytest.mark.browser
@pytest.mark.integration
def test_tool_calls_are_shown_collapsed(page: Page, base_url: str) -> None:
    sign_in(page, base_url, new_user("cal"))

    send(page, "What time is it?")
    wait_complete(page)

    tool = page.locator("#messages details.tool")
    expect(tool).to_have_count(1)
    expect(tool.locator("summary")).to_contain_text("current_time")
    assert tool.get_attribute("open") is None  # collapsed
    output = tool.locator(".tool-output")
    expect(output).to_be_hidden()
    tool.locator("summary").click()
    expect(output).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(page.locator("#messages .message.assistant .text")).to_contain_text(
        "The current_time tool says:"
    )


@pytest.mark.browser
@pytest.mark.integration
def test_sessions_are_listed_with_metadata_renamed_and_deleted(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("dan")
    api = api_of(issuer, base_url, user)
    api.call("POST", "/v1/sessions", 201, json={"session_id": "older", "title": "Older"})
    api.call(
        "POST",
        "/v1/sessions",
        201,
        json={"session_id": "trip", "title": "Trip", "metadata": {"app": "travel", "k": "v"}},
    )
    sign_in(page, base_url, user)
    rows = page.locator("#sessions > li")
    expect(rows.locator(".session-title")).to_have_text(["Trip", "Older"])  # newest first
    expect(rows.first.locator(".chip")).to_have_text(["app=travel", "k=v"])

    page.get_by_role("button", name="Rename “Trip”").click()
    page.get_by_role("textbox", name="Title").fill("Lisbon trip")
    page.get_by_role("button", name="Save").click()
    expect(rows.first.locator(".session-title")).to_have_text("Lisbon trip")
    assert api.session("trip")["title"] == "Lisbon trip"

    page.get_by_role("button", name="Delete “Older”").click()
    page.get_by_role("button", name="Cancel").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_role("button", name="Delete “Older”")).to_be_focused()
    page.get_by_role("button", name="Delete “Older”").click()
    expect(page.get_by_role("dialog")).to_contain_text("“Older” and all its messages")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(rows).to_have_count(1)
    api.session("older", status=404)
    expect(rows.first.locator(".session-open")).to_be_focused()  # the neighbour's, not <body>


@pytest.mark.browser
@pytest.mark.integration
def test_renaming_by_keyboard_saves_on_enter_and_keeps_the_focus(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("dot")
    api = api_of(issuer, base_url, user)
    api.call("POST", "/v1/sessions", 201, json={"session_id": "trip", "title": "Trip"})
    sign_in(page, base_url, user)
    dialog = page.get_by_role("dialog")

    page.get_by_role("button", name="Rename “Trip”").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Title")).to_be_focused()
    page.keyboard.type("Lisbon trip")  # the old title is selected: typing replaces it
    page.keyboard.press("Enter")

    renamed = page.get_by_role("button", name="Rename “Lisbon trip”")
    expect(renamed).to_be_focused()
    assert api.session("trip")["title"] == "Lisbon trip"
    page.keyboard.press("Enter")
    page.keyboard.type("Not this")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    renamed.click()
    page.get_by_role("textbox", name="Title").fill("Nor this")
    page.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(renamed).to_be_focused()
    assert api.session("trip")["title"] == "Lisbon trip"


@pytest.mark.browser
@pytest.mark.integration
def test_the_sidebar_scrolls_through_every_session(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("eve")
    api = api_of(issuer, base_url, user)
    for n in range(45):
        api.call("POST", "/v1/sessions", 201, json={"session_id": f"s{n:02}", "title": f"S{n:02}"})
    sign_in(page, base_url, user)
    rows = page.locator("#sessions > li")
    expect(rows).to_have_count(20)

    deadline = time.monotonic() + 15
    while rows.count() < 45 and time.monotonic() < deadline:  # scroll as a reader would
        page.locator("#sidebar").evaluate("node => { node.scrollTop = node.scrollHeight }")
        page.wait_for_timeout(200)
    expect(rows).to_have_count(45)

    expect(page.locator("#sessions-more")).to_be_hidden()
    titles = rows.locator(".session-title").all_text_contents()
    assert titles == [f"S{n:02}" for n in reversed(range(45))]


@pytest.mark.browser
@pytest.mark.integration
def test_history_pages_back_on_scroll_up(page: Page, base_url: str, issuer: DevIssuer) -> None:
    user = new_user("fay")
    api = api_of(issuer, base_url, user)
    api.call("POST", "/v1/sessions", 201, json={"session_id": "long"})
    items = [{"role": "user" if n % 2 else "assistant", "content": f"m{n}"} for n in range(70)]
    api.call("POST", "/v1/sessions/long/messages", 201, json={"items": items})
    sign_in(page, base_url, user)
    page.goto(f"{base_url}/#/s/long")
    texts = page.locator("#messages .message .text")
    expect(texts).to_have_count(30)
    expect(texts.last).to_have_text("m69")

    deadline = time.monotonic() + 15
    while texts.count() < 70 and time.monotonic() < deadline:  # scroll up as a reader would
        page.locator("#history").evaluate("node => { node.scrollTop = 0 }")
        page.wait_for_timeout(100)

    expect(texts).to_have_count(70)
    assert texts.all_text_contents() == [f"m{n}" for n in range(70)]
    expect(page.locator("#load-older")).to_be_hidden()


@pytest.mark.browser
@pytest.mark.integration
def test_a_reload_mid_answer_resumes_it(page: Page, base_url: str, issuer: DevIssuer) -> None:
    set_word_delay(0.15)
    user = new_user("gil")
    message = " ".join(f"word{n}" for n in range(30))  # a reply of ~40 words: ~6 s
    full = offline_reply(message)
    sign_in(page, base_url, user)
    send(page, message)
    streaming = page.locator("#live .message.assistant.streaming .text")
    expect(streaming).to_contain_text("You said")
    session_id = open_session_id(page)
    assert page.evaluate("JSON.parse(sessionStorage.getItem('chat-sessions.turn')).turn_id")

    page.reload()

    expect(page.locator("#status")).to_have_text("Resuming the answer in progress…")
    expect(page.locator("#live .message.user .text")).to_have_text(message)
    expect(streaming).to_contain_text("You said")
    during = streaming.text_content() or ""
    seen = follow_answer(page)
    assert full.startswith(during) and len(during) < len(full)  # the answer so far, then live
    assert seen and all(full.startswith(text) for text in seen)  # no event shown twice
    expect(page.locator("#messages .message.assistant .text")).to_have_text([full])
    expect(page.locator("#messages .message.user .text")).to_have_text([message])
    stored = api_of(issuer, base_url, user).messages(session_id)
    assert [(m["role"], m["text"]) for m in stored] == [("user", message), ("assistant", full)]
    assert page.evaluate("sessionStorage.getItem('chat-sessions.turn')") is None


@pytest.mark.browser
@pytest.mark.integration
def test_a_broken_stream_reattaches_after_its_last_event(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("hal")
    api = api_of(issuer, base_url, user)
    api.call("POST", "/v1/sessions", 201, json={"session_id": "flaky"})
    message = "this answer loses its connection halfway through"
    resumed: list[Request] = []

    def cut_short(route: Route) -> None:
        answer = route.fetch()
        frames = answer.text().split("\n\n")
        route.fulfill(response=answer, body="\n\n".join(frames[:6]) + "\n\n")  # no terminal

    page.route("**/v1/sessions/flaky/chat", cut_short)
    page.on("request", lambda r: resumed.append(r) if "/turns/" in r.url else None)
    sign_in(page, base_url, user)
    page.goto(f"{base_url}/#/s/flaky")
    expect(page.get_by_role("heading", name="Untitled conversation")).to_be_visible()

    send(page, message)
    seen = follow_answer(page)

    full = offline_reply(message)
    assert [r.headers.get("last-event-id") for r in resumed] == ["6"]
    assert seen and all(full.startswith(text) for text in seen)  # the missed events, once
    expect(page.locator("#messages .message.assistant .text")).to_have_text([full])
    assert [m["text"] for m in api.messages("flaky")] == [message, full]


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.parametrize("replayed", [False, True], ids=["error-only", "after-events-seen"])
def test_a_resumed_streams_error_without_an_id_ends_the_answer(
    page: Page, base_url: str, issuer: DevIssuer, replayed: bool
) -> None:
    """The resume's synthetic terminal ``error`` (``stream_incomplete``) has no ``id:`` line: it
    is shown at once, even after events the page had seen, and nothing reconnects again."""
    user = new_user("hap")
    api_of(issuer, base_url, user).call("POST", "/v1/sessions", 201, json={"session_id": "cut"})
    said = "the answer's stream ended early; the conversation shows what was stored"
    incomplete = {"code": "stream_incomplete", "message": said, "retryable": False}
    first: list[str] = []
    resumed: list[str | None] = []

    def cut_short(route: Route) -> None:
        answer = route.fetch()
        first.extend(answer.text().split("\n\n")[:6])  # `turn` and tokens, ids 1-6
        route.fulfill(response=answer, body="\n\n".join(first) + "\n\n")

    def resume(route: Route) -> None:
        resumed.append(route.request.headers.get("last-event-id"))
        seen_again = "".join(f"{frame}\n\n" for frame in first[4:6]) if replayed else ""
        error = f"event: error\ndata: {json.dumps(incomplete)}\n\n"
        route.fulfill(status=200, content_type=SSE, body=seen_again + error)

    page.route("**/v1/sessions/cut/chat", cut_short)
    page.route("**/v1/sessions/cut/turns/*/events", resume)
    sign_in(page, base_url, user)
    page.goto(f"{base_url}/#/s/cut")
    expect(page.get_by_role("heading", name="Untitled conversation")).to_be_visible()

    send(page, "this answer loses its writer")
    alert = page.locator("#live .error-box")
    expect(alert).to_contain_text(said, timeout=5_000)
    page.wait_for_timeout(1_500)  # a reconnection would have come by now

    assert first[0].startswith("id: 1\n") and "id: 6\n" in first[5]
    assert resumed == ["6"]
    expect(alert.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.locator("#status")).to_contain_text(said)


@pytest.mark.browser
@pytest.mark.integration
def test_errors_are_shown_with_a_retry_button(page: Page, base_url: str) -> None:
    calls: list[str] = []
    failure = {
        "code": "model_unavailable",
        "message": "the model is unavailable",
        "retryable": True,
    }

    def flaky(route: Route) -> None:
        calls.append(route.request.headers["idempotency-key"])
        if len(calls) == 1:
            route.abort("connectionreset")  # nothing reached the server
        elif len(calls) == 2:
            body = f"id: 1\nevent: error\ndata: {json.dumps(failure)}\n\n"
            route.fulfill(status=200, content_type="text/event-stream", body=body)
        else:
            route.continue_()

    page.route("**/v1/chat", flaky)
    sign_in(page, base_url, new_user("ida"))

    send(page, "hello through a bad network")
    alert = page.locator("#live .error-box")
    expect(alert).to_contain_text("could not be sent")
    alert.get_by_role("button", name="Retry").click()
    expect(alert).to_contain_text("the model is unavailable")
    alert.get_by_role("button", name="Retry").click()
    wait_complete(page)

    assert len(calls) == 3 and len(set(calls)) == 1  # one Idempotency-Key for every attempt
    expect(page.locator("#messages .message.assistant .text")).to_have_text(
        [offline_reply("hello through a bad network")]
    )


@pytest.mark.browser
@pytest.mark.integration
def test_a_failed_turn_gives_the_history_its_actions_back(page: Page, base_url: str) -> None:
    sign_in(page, base_url, new_user("ike"))
    send(page, "first question")
    wait_complete(page)
    failure = {"code": "model_rate_limited", "message": "slow down", "retryable": True}
    page.route(
        "**/v1/sessions/*/chat",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "7"},
            json={"error": failure},
        ),
    )

    send(page, "second question")

    expect(page.locator("#live .error-box")).to_contain_text("slow down You can retry in 7 s.")
    expect(page.get_by_role("button", name="Edit this message")).to_have_count(1)
    expect(page.get_by_role("button", name="Regenerate the answer")).to_have_count(1)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    expect(page.locator(".session.current .busy-dot")).to_have_count(0)


@pytest.mark.browser
@pytest.mark.integration
def test_a_turn_left_running_stops_answering_in_the_sidebar(page: Page, base_url: str) -> None:
    """A conversation left mid-answer shows "answering" until the server says the turn ended."""
    sign_in(page, base_url, new_user("jay"))
    send(page, " ".join(f"word{n}" for n in range(20)))
    expect(page.locator("#live .message.assistant.streaming .text")).to_contain_text("You said")
    page.get_by_role("button", name="New chat", exact=True).click()
    busy = page.locator("#sessions .busy-dot")

    expect(busy).to_have_count(1)
    expect(busy).to_have_count(0, timeout=15_000)
    expect(page.locator("#sessions .session-meta").first).to_contain_text("2 messages")


@pytest.mark.browser
@pytest.mark.integration
def test_a_refused_token_mid_session_signs_out(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("kai")
    api_of(issuer, base_url, user).call("POST", "/v1/sessions", 201, json={"title": "Kept"})
    sign_in(page, base_url, user)
    expect(page.locator("#sessions .session-title")).to_have_text(["Kept"])
    expired = issuer.mint(user, now=time.time() - 7200, ttl_seconds=60)

    def with_expired_token(route: Route) -> None:
        route.continue_(headers={**route.request.headers, "authorization": f"Bearer {expired}"})

    page.route("**/v1/**", with_expired_token)  # the server itself refuses it: a real 401
    page.locator(".session-open").first.click()

    expect(page.get_by_role("heading", name="Sign in to chat-sessions")).to_be_visible()
    expect(page.locator("#signin-error")).to_contain_text("expired or was refused")
    assert page.evaluate("sessionStorage.getItem('chat-sessions.auth')") is None
    expect(page.locator("#sessions > li")).to_have_count(0)


@pytest.mark.browser
@pytest.mark.integration
def test_sending_while_another_turn_runs_shows_that_turn(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    """Another tab's turn holds the lease: the 409 shows that turn, and the message waits."""
    user = new_user("lou")
    api = api_of(issuer, base_url, user)
    api.call("POST", "/v1/sessions", 201, json={"session_id": "busy"})
    sign_in(page, base_url, user)
    page.goto(f"{base_url}/#/s/busy")
    expect(page.get_by_role("heading", name="Untitled conversation")).to_be_visible()
    other = " ".join(f"other{n}" for n in range(30))
    elsewhere = threading.Thread(
        target=httpx.post,
        args=(f"{base_url}/v1/sessions/busy/chat",),
        kwargs={
            "json": {"message": other},
            "headers": {"Authorization": f"Bearer {api.token}", "Accept": SSE},
            "timeout": 60,
        },
    )
    elsewhere.start()
    try:
        deadline = time.monotonic() + 10
        while not api.session("busy")["turn_in_progress"] and time.monotonic() < deadline:
            time.sleep(0.05)

        send(page, "mine, later")

        expect(page.locator("#live .message.user .text")).to_have_text(other)
        expect(page.get_by_role("textbox", name="Message")).to_have_value("mine, later")
        seen = follow_answer(page)
    finally:
        elsewhere.join()
    assert seen and all(offline_reply(other).startswith(text) for text in seen)
    expect(page.locator("#messages .message .text")).to_have_text([other, offline_reply(other)])


@pytest.mark.browser
@pytest.mark.integration
def test_users_see_only_their_own_sessions(page: Page, base_url: str, issuer: DevIssuer) -> None:
    owner = new_user("jo")
    api_of(issuer, base_url, owner).call(
        "POST", "/v1/sessions", 201, json={"session_id": "private", "title": "Private plans"}
    )
    sign_in(page, base_url, owner)
    expect(page.locator("#sessions .session-title")).to_have_text(["Private plans"])
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, base_url, new_user("kim"))
    expect(page.locator("#sessions-empty")).to_be_visible()
    expect(page.locator("#sessions > li")).to_have_count(0)
    page.goto(f"{base_url}/#/s/private")

    expect(page.get_by_role("heading", name="Conversation not found")).to_be_visible()
    expect(page.locator("#history-note")).to_contain_text("does not exist")
    expect(page.get_by_text("Private plans")).to_have_count(0)


@pytest.mark.browser
@pytest.mark.integration
def test_a_malformed_address_is_a_new_chat(page: Page, base_url: str) -> None:
    sign_in(page, base_url, new_user("liv"))
    page.goto(f"{base_url}/#/s/%")  # decodeURIComponent throws on it

    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()


@pytest.mark.browser
@pytest.mark.integration
def test_edit_and_regenerate_make_branches_and_the_switcher_switches(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    user = new_user("lee")
    sign_in(page, base_url, user)
    send(page, "first question")
    wait_complete(page)
    session_id = open_session_id(page)
    select = page.get_by_role("combobox", name="Branch")
    expect(select.locator("option")).to_have_count(1)
    edit = page.get_by_role("button", name="Edit this message")
    edit.click()
    page.keyboard.press("Escape")
    expect(edit).to_be_focused()  # the cancelled edit gives the focus back

    page.get_by_role("button", name="Edit this message").click()
    page.get_by_role("textbox", name="Edited message").fill("edited question")
    page.get_by_role("button", name="Send edit").click()
    wait_complete(page)
    expect(page.locator("#messages .message .text")).to_have_text(
        ["edited question", offline_reply("edited question")]
    )
    expect(select.locator("option")).to_have_count(2)
    expect(page.locator("#branch-note")).to_have_text("On Branch 1, 2 branches")

    page.get_by_role("button", name="Regenerate the answer").click()
    wait_complete(page)
    expect(select.locator("option")).to_have_count(3)
    expect(page.locator("#branch-note")).to_have_text("On Branch 2, 3 branches")
    expect(page.locator("#messages .message .text")).to_have_text(
        ["edited question", offline_reply("edited question")]
    )

    select.select_option("main")
    expect(page.locator("#branch-note")).to_have_text("On main, 3 branches")
    expect(page.locator("#messages .message .text")).to_have_text(
        ["first question", offline_reply("first question")]
    )
    api = api_of(issuer, base_url, user)
    assert api.session(session_id)["active_branch"] == "main"
    branches = api.call("GET", f"/v1/sessions/{session_id}/branches")["branches"]
    assert len(branches) == 3


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.parametrize("reload_keeps_the_record", [True, False], ids=["this-tab", "another-tab"])
def test_a_reload_during_an_edit_shows_the_edit_not_a_false_history(
    page: Page, base_url: str, reload_keeps_the_record: bool
) -> None:
    """Until the edit's answer completes, the messages it replaces stay hidden, after a reload
    too (sessionStorage says which; without it, the `turn` event's branch says it is an edit)."""
    sign_in(page, base_url, new_user("mae"))
    send(page, "first question")
    wait_complete(page)
    set_word_delay(0.12)
    edited = " ".join(f"edit{n}" for n in range(12))
    page.get_by_role("button", name="Edit this message").click()
    page.get_by_role("textbox", name="Edited message").fill(edited)
    page.get_by_role("button", name="Send edit").click()
    expect(page.locator("#live .message.assistant.streaming .text")).to_contain_text("You said")
    if not reload_keeps_the_record:
        page.evaluate("sessionStorage.removeItem('chat-sessions.turn')")

    page.reload()

    expect(page.locator("#status")).to_have_text("Resuming the answer in progress…")
    expect(page.locator("#live .message.user .text")).to_have_text(edited)
    expect(page.locator("#messages .message")).to_have_count(0)  # not "first question" & co
    wait_complete(page)
    expect(page.locator("#messages .message .text")).to_have_text([edited, offline_reply(edited)])
    expect(page.locator("#branch-note")).to_have_text("On Branch 1, 2 branches")


@pytest.mark.browser
@pytest.mark.integration
def test_on_a_phone_the_sidebar_is_behind_a_toggle(browser: Browser, base_url: str) -> None:
    with checked_page(browser, viewport=PHONE, has_touch=True) as page:
        sign_in(page, base_url, new_user("max"))
        composer = page.get_by_role("textbox", name="Message")
        composer.click()
        page.keyboard.type("hello")
        page.keyboard.press("Enter")  # a touch screen: Enter adds a line, Send sends
        page.keyboard.type("from a phone")
        expect(composer).to_have_value("hello\nfrom a phone")
        page.get_by_role("button", name="Send").click()
        wait_complete(page)
        page.locator("#new-chat").dispatch_event("click")  # in the closed sidebar
        sidebar = page.get_by_role("navigation", name="Conversations")
        toggle = page.get_by_role("button", name="Show conversations")
        conversation = page.locator("#conversation")

        expect(sidebar).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        toggle.click()
        expect(sidebar).to_be_visible()
        expect(page.get_by_role("button", name="Hide conversations")).to_have_attribute(
            "aria-expanded", "true"
        )
        expect(conversation).to_have_attribute("inert", "")  # only the sidebar is usable
        page.keyboard.press("Escape")
        expect(sidebar).to_be_hidden()
        expect(conversation).not_to_have_attribute("inert", "")
        toggle.click()
        sidebar.locator(".session-open").first.click()

        expect(sidebar).to_be_hidden()
        expect(page.locator("#messages .message.user .text")).to_have_text(["hello\nfrom a phone"])
        expect(conversation).not_to_have_attribute("inert", "")


@pytest.mark.browser
@pytest.mark.integration
def test_the_keyboard_alone_signs_in_and_sends(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    expect(page.get_by_role("textbox", name="User name")).to_be_focused()
    page.keyboard.type(new_user("ned"))
    page.keyboard.press("Enter")
    composer = page.get_by_role("textbox", name="Message")
    expect(composer).to_be_focused()  # a new chat starts in the message box
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    page.keyboard.press("Enter")
    wait_complete(page)
    expect(page.locator("#messages .message.user .text")).to_have_text(["line one\nline two"])
    expect(composer).to_have_value("")

    # Back to the sidebar, a new chat, then the skip link back to the message box.
    assert tab_to(page, "new-chat", "Shift+Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    page.keyboard.press("Enter")
    expect(composer).to_be_focused()
    expect(page.get_by_role("heading", name="New chat")).to_be_visible()
    assert tab_to(page, "skip-link", "Shift+Tab")
    page.keyboard.press("Enter")
    expect(composer).to_be_focused()
    page.keyboard.type("second chat")
    page.keyboard.press("Enter")
    wait_complete(page)

    assert outline not in ("", "none")  # the focus is visible
    expect(page.locator("#sessions > li")).to_have_count(2)


@pytest.mark.browser
@pytest.mark.integration
def test_the_stream_parser_keeps_each_events_own_id(page: Page, base_url: str) -> None:
    """sse.js on its own: frames split anywhere, CRLF and CR, comments, multi-line data, and an
    event without an `id:` line, which has no id of its own (the last one is only remembered)."""
    page.goto(f"{base_url}/")
    chunks = [
        '\ufeffid: 1\nevent: token\ndata: {"delta":"a"}\n',
        "\n: keep-alive\n\nid: 2\r\nevent: tok",
        "en\r\ndata: x\r\ndata: y\r",
        "\n\revent: error\ndata: {}\n\nid: 3\ndata: never finished",
    ]

    events = page.evaluate(
        """async (chunks) => {
            const { sseParser } = await import("/page/sse.js");
            const parser = sseParser();
            return chunks.flatMap((chunk) => parser.push(chunk));
        }""",
        chunks,
    )

    assert events == [
        {"name": "token", "data": '{"delta":"a"}', "id": "1", "lastEventId": "1"},
        {"name": "token", "data": "x\ny", "id": "2", "lastEventId": "2"},
        {"name": "error", "data": "{}", "id": None, "lastEventId": "2"},
    ]


def tab_to(page: Page, target: str, key: str = "Tab", most: int = 30) -> bool:
    """Presses ``key`` until the element with that id (or class) has the focus."""
    probe = f"[document.activeElement.id, ...document.activeElement.classList].includes('{target}')"
    for _ in range(most):
        page.keyboard.press(key)
        if page.evaluate(probe):
            return True
    return False


@pytest.mark.browser
@pytest.mark.integration
def test_token_mode_signs_in_with_a_pasted_token(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    page.route("**/page/config.json", lambda route: route.fulfill(json={**LOCAL, "auth": "token"}))
    page.goto(f"{base_url}/")
    page.get_by_role("textbox", name="Bearer token").fill(f"Bearer {issuer.mint('olga')}")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#whoami")).to_have_text("olga")
    send(page, "pasted")
    wait_complete(page)
    expect(page.locator("#messages .message.assistant .text")).to_have_text(
        [offline_reply("pasted")]
    )


@pytest.mark.browser
@pytest.mark.integration
def test_cognito_sign_in_sets_a_new_password_and_refreshes(
    page: Page, base_url: str, issuer: DevIssuer
) -> None:
    """Cognito's public API answered in the browser (as AWS would), with ID tokens the local
    issuer signs; the page's policy is the one a Cognito config gets."""
    cognito = {"region": "us-east-1", "client_id": "localclient1234"}
    config = {**LOCAL, "auth": "cognito", "cognito": cognito}
    policy = content_security_policy(PageConfig.model_validate(config))
    calls: list[tuple[str, dict[str, Any]]] = []

    def with_cognito_policy(route: Route) -> None:
        answer = route.fetch()
        route.fulfill(
            response=answer, headers={**answer.headers, "content-security-policy": policy}
        )

    def user_pool(route: Route) -> None:
        target = route.request.headers["x-amz-target"].split(".")[-1]
        body = json.loads(route.request.post_data or "{}")
        calls.append((target, body))
        flow = body.get("AuthFlow")
        if target == "InitiateAuth" and flow == "USER_PASSWORD_AUTH":
            answer: dict[str, Any] = {
                "ChallengeName": "NEW_PASSWORD_REQUIRED",
                "Session": "challenge-session",
                "ChallengeParameters": {"USER_ID_FOR_SRP": "pia"},
            }
        elif target in ("RespondToAuthChallenge", "InitiateAuth"):
            expires = 30 if target == "RespondToAuthChallenge" else 3600  # 30 s: refresh at once
            answer = {
                "AuthenticationResult": {
                    "IdToken": issuer.mint("pia", **COGNITO_CLAIMS),
                    "AccessToken": "unused",
                    "ExpiresIn": expires,
                    "TokenType": "Bearer",
                    **({"RefreshToken": "refresh-1"} if target != "InitiateAuth" else {}),
                }
            }
        else:
            answer = {}
        route.fulfill(
            status=200,
            headers={"Access-Control-Allow-Origin": "*"},
            content_type="application/x-amz-json-1.1",
            body=json.dumps(answer),
        )

    page.route(f"{base_url}/", with_cognito_policy)
    page.route("**/page/config.json", lambda route: route.fulfill(json=config))
    page.route("https://cognito-idp.us-east-1.amazonaws.com/", user_pool)
    page.goto(f"{base_url}/")
    page.get_by_role("textbox", name="User name").fill("pia")
    page.get_by_label("Password", exact=True).fill("temporary-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("Choose a new password")
    page.get_by_label("New password").fill("a-new-password-2")
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator("#whoami")).to_have_text("pia")
    expect(page.locator("#sessions-empty")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to chat-sessions")).to_be_visible()
    deadline = time.monotonic() + 5
    while "RevokeToken" not in [t for t, _ in calls] and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # sign-out revokes the refresh token without waiting

    targets = [(t, b.get("AuthFlow")) for t, b in calls]
    assert targets[:3] == [
        ("InitiateAuth", "USER_PASSWORD_AUTH"),
        ("RespondToAuthChallenge", None),
        ("InitiateAuth", "REFRESH_TOKEN_AUTH"),
    ]
    assert calls[1][1]["ChallengeResponses"] == {
        "USERNAME": "pia",
        "NEW_PASSWORD": "a-new-password-2",
    }
    assert calls[1][1]["Session"] == "challenge-session"
    assert calls[2][1]["AuthParameters"] == {"REFRESH_TOKEN": "refresh-1"}
    assert ("RevokeToken", {"Token": "refresh-1", "ClientId": "localclient1234"}) in calls
    assert all(b.get("ClientId") == "localclient1234" for _, b in calls)


@pytest.mark.browser
@pytest.mark.integration
def test_the_page_passes_a_basic_accessibility_check(page: Page, base_url: str) -> None:
    """Landmarks, an accessible name on every control, the live status region, and text
    contrast of at least 4.5:1 (3:1 for large text), signed out and in."""
    page.goto(f"{base_url}/")
    expect(page.get_by_role("textbox", name="User name")).to_be_visible()
    assert page.evaluate(LOW_CONTRAST) == []
    sign_in(page, base_url, new_user("quinn"))
    send(page, "what time is it")
    wait_complete(page)
    page.locator("#messages details.tool summary").click()
    page.get_by_role("button", name="Edit this message").hover()

    assert page.evaluate(LOW_CONTRAST) == []

    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, textarea, a[href]')]
            .filter(node => node.checkVisibility())
            .filter(node => !(node.labels && node.labels.length) && !node.getAttribute('aria-label')
                && !node.textContent.trim())
            .map(node => node.outerHTML)"""
    )
    assert unnamed == []
    expect(page.get_by_role("banner")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.locator("#status")).to_have_attribute("aria-live", "polite")
    assert page.evaluate("document.documentElement.lang") == "en"
