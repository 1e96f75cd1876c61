"""The moderator console in a real browser (Debian's headless chromium driven by Playwright) against the
real stack: `safety up` on free ports (Temporal, PostgreSQL, Redis, Qdrant, API, workers) with the fake
LLM. One stack for the module; the tests run in order and build on each other's cases.

Screenshots of the queue, a case page and the overview are written to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.db import create_pool
from core.storage.keys import Role, create_key
from tests.doubles.fake_llm import DEFAULT_RULES, FakeLLMServer
from tests.harness import REPO, StackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CHROMIUM = Path(os.environ.get("SAFETY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "docs" / "screenshots"

# Verdicts the LLM double gives with too little confidence (0.5 < 0.7), so the cases wait for a person
# while still carrying a verdict to show. The default rules (confident insults and threats) follow.
UNSURE_RULES: list[dict[str, Any]] = [
    {"pattern": "where you live", "verdict": {
        "violation": True, "category": "threat", "severity": "high", "policy_clause": "H3",
        "rationale": "fake LLM: a veiled threat, but it may be a joke between friends", "recommended_action": "ban",
        "confidence": 0.5}},
    {"pattern": "trash", "verdict": {
        "violation": True, "category": "targeted_insult", "severity": "medium", "policy_clause": "H1",
        "rationale": "fake LLM: an insult aimed at the recipient; the tone is unclear", "recommended_action": "delete",
        "confidence": 0.5}},
]
ACTIONED = "you are a worthless idiot, nobody wants you here"
MAIN = "you worthless trash, idiot"
KEY_ALLOW = "you absolute trash, shut up"
KEY_ACTION = "you are trash and everyone hates you"
THREAT = "watch out, I know where you live, you idiot"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    msg = (f"the browser tests need Debian's chromium at {CHROMIUM}: run `apt-get install -y chromium` "
           "(`make test` does this) or set SAFETY_CHROMIUM to its path")
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(rules=[*UNSURE_RULES, *[r.model_dump() for r in DEFAULT_RULES]]) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Iterator[StackProcess]:
    _require_chromium()
    s = StackProcess(tmp_path_factory.mktemp("console"), llm.base_url)
    s.start()
    yield s
    s.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def keys(stack: StackProcess) -> dict[str, str]:
    pool = await create_pool(stack.db_url, min_size=1, max_size=2)
    try:
        return {name: await create_key(pool, name=name, role=role, actor="test")
                for name, role in (("alice", Role.MODERATOR), ("bob", Role.MODERATOR),
                                   ("platform", Role.INGEST), ("root", Role.ADMIN))}
    finally:
        await pool.close()


def _event(content: str, author: str, target: str = "victim", channel: str = "general") -> dict[str, Any]:
    return {"event_type": "message", "platform": "discord", "channel_id": channel, "user_id": target,
            "author_id": author, "content": content, "message_id": uuid.uuid4().hex}


def _ingest(stack: StackProcess, content: str, author: str, **kw: Any) -> str:
    r = httpx.post(f"{stack.base_url}/v1/events/ingest", json=_event(content, author, **kw),
                   headers={"X-API-Key": stack.key}, timeout=30)
    assert r.status_code == 202, r.text
    return str(r.json()["event_id"])


def _case(stack: StackProcess, case_id: str) -> dict[str, Any]:
    r = httpx.get(f"{stack.base_url}/v1/cases/{case_id}", headers={"X-API-Key": stack.key}, timeout=30)
    return r.json() if r.status_code == 200 else {}  # type: ignore[no-any-return]


async def _wait_case(stack: StackProcess, case_id: str, ready: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    case: dict[str, Any] = {}
    while time.monotonic() < deadline:
        case = _case(stack, case_id)
        if case and ready(case):
            return case
        await asyncio.sleep(0.3)
    raise AssertionError(f"case {case_id} did not reach the expected state in {timeout}s: {case}")


def _pending(case: dict[str, Any]) -> bool:
    return case.get("review", {}).get("status") == "pending"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cases(stack: StackProcess) -> dict[str, str]:
    """The scenario every test works on: one actioned insult (an indexed confirmed case, so later ones
    have a similar case), four that wait for a person (one a threat), and ordinary chat."""
    ids = {"actioned": _ingest(stack, ACTIONED, "h0")}
    await _wait_case(stack, ids["actioned"], lambda c: c.get("decision") == "action")
    for name, text, author in (("main", MAIN, "h1"), ("key_allow", KEY_ALLOW, "k1"), ("key_action", KEY_ACTION, "k2"),
                               ("threat", THREAT, "th1")):
        ids[name] = _ingest(stack, text, author)
        await _wait_case(stack, ids[name], _pending)  # one at a time: the queue's order is the order of arrival
    for i in range(3):
        _ingest(stack, f"good game everyone, see you tomorrow #{i}", f"chat{i}", target=f"chat{i + 1}")
    return ids


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(stack: StackProcess) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


async def _page(browser: Any, stack: StackProcess, key: str | None = None) -> Any:
    """A fresh browser context (own cookies) at 1280 px, signed in with ``key`` when given."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.base_url)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.on("console", lambda m: page.errors.append(m.text) if "Content Security Policy" in m.text else None)  # type: ignore[attr-defined]
    if key is not None:
        await page.goto("/console/login")
        await page.get_by_label("API key").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/console/queue")
    return page


async def _close(page: Any) -> None:
    errors = list(page.errors)
    await page.context.close()
    assert not errors, f"script errors or CSP violations in the page: {errors}"


async def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


async def test_ingest_key_cannot_sign_in(browser: Any, stack: StackProcess, keys: dict[str, str]) -> None:
    page = await _page(browser, stack)
    await page.goto("/console/queue")
    assert "/console/login" in page.url
    await page.get_by_label("API key").fill(keys["platform"])
    await page.get_by_role("button", name="Sign in").click()
    error = page.get_by_test_id("login-error")
    assert "role 'ingest', which cannot sign in" in (await error.inner_text())
    await page.goto("/console/queue")
    assert "/console/login" in page.url, "an ingest key must not get a session"
    await _close(page)


async def test_moderator_cannot_reach_admin_pages(browser: Any, stack: StackProcess, keys: dict[str, str]) -> None:
    page = await _page(browser, stack, keys["bob"])
    assert (await page.get_by_role("link", name="Audit log (admin)").count()) == 0
    response = await page.goto("/console/admin/audit")
    assert response.status == 403
    assert "the audit log is for admins" in (await page.get_by_test_id("error").inner_text())
    await _close(page)
    admin = await _page(browser, stack, keys["root"])
    await admin.get_by_role("link", name="Audit log (admin)").click()
    assert (await admin.get_by_test_id("audit").is_visible())
    await _close(admin)


async def test_claim_read_decide_overturn_and_the_stats_follow(browser: Any, stack: StackProcess, keys: dict[str, str],
                                                         cases: dict[str, str]) -> None:
    page = await _page(browser, stack, keys["alice"])
    await page.goto("/console/overview?window=1h")
    overturned_before = int((await page.get_by_test_id("tiles").inner_text()).split(" overturned")[0].rsplit("(", 1)[1])
    actioned_before = int(await page.get_by_test_id("actioned").inner_text())

    await page.goto("/console/queue")
    row = page.locator(f"tr[data-case-id='{cases['main']}']")
    assert "LLM confidence 0.50 below 0.70" in (await row.inner_text())
    counts = (await page.get_by_test_id("counts").inner_text())
    assert re.search(r"\b4 waiting", counts), counts
    rows = page.locator("#queue-rows tr[data-case-id]")
    assert [(await rows.nth(i).get_attribute("data-case-id")) for i in range(4)] == [
        cases["main"], cases["key_allow"], cases["key_action"], cases["threat"]], "oldest first"
    await _shot(page, "console-queue.png")

    await row.get_by_role("button", name="Claim").click()
    await page.wait_for_url(f"**/console/cases/{cases['main']}")
    assert "Claimed until" in (await page.get_by_test_id("flash").inner_text())
    verdict = (await page.get_by_test_id("verdict").inner_text())
    assert "H1" in verdict and "medium" in verdict and "0.50" in verdict and "tone is unclear" in verdict
    assert "harassment-v1" in verdict
    similar = page.get_by_test_id("similar")
    similar_text = await similar.inner_text()
    assert (await similar.locator(f"a[href='/console/cases/{cases['actioned']}']").count()) == 1, similar_text
    assert "action" in (await similar.inner_text())
    assert "level 0 → 1: warn." in (await page.get_by_test_id("ladder-preview").inner_text())
    assert "running, waiting for a moderator's decision" in await page.get_by_test_id("workflow-state").inner_text()
    link = (await page.get_by_test_id("temporal-link").get_attribute("href"))
    assert link and link.endswith(f"/workflows/event-{cases['main']}")
    await _shot(page, "console-case.png")

    form = page.get_by_test_id("decision-form")
    await form.get_by_label("Yes, violation (x)").check()
    await form.get_by_label("Category").select_option("targeted_insult")
    await form.get_by_label("delete").check()
    await form.get_by_label("warn").check()
    await form.get_by_label("Note (kept in the audit log)").fill("insult confirmed in the console")
    await form.get_by_test_id("submit").click()
    await page.wait_for_url(f"**/console/cases/{cases['main']}")
    flash = (await page.get_by_test_id("flash").inner_text())
    assert ": action (" in flash and "delete applied" in flash and "warn applied" in flash, flash
    actions = (await page.get_by_test_id("actions").inner_text())
    assert "delete" in actions and "applied" in actions
    assert (await page.get_by_test_id("review-status").inner_text()) == "decided"
    await page.get_by_test_id("workflow-state").filter(has_text=": completed").wait_for(timeout=30_000)
    case = _case(stack, cases["main"])
    assert case["review"]["reviewer"] == "alice" and case["decision"] == "action"
    review_audit = [a for a in case["audit"] if a["kind"] == "review"]
    assert review_audit and "alice" in review_audit[-1]["actor"], case["audit"]

    await page.get_by_label("Reason (required)").fill("context shows friendly banter")
    await page.get_by_test_id("overturn").click()
    assert "Overturn started" in (await page.get_by_test_id("flash").inner_text())
    # The live section refreshes itself (every 5 s) until the appeal workflow has reverted the case.
    await page.get_by_test_id("false-positive").wait_for(timeout=60_000)
    appeals = await page.get_by_test_id("case-appeals").inner_text()
    assert "overturned" in appeals and "revert:" in appeals, appeals
    case = _case(stack, cases["main"])
    assert case["false_positive"] is True
    assert case["appeals"][-1]["status"] == "overturned" and case["appeals"][-1]["decided_by"] == "moderator:alice"

    await page.goto("/console/overview?window=1h")
    tiles = (await page.get_by_test_id("tiles").inner_text())
    assert int(tiles.split(" overturned")[0].rsplit("(", 1)[1]) == overturned_before + 1, tiles
    assert int(await page.get_by_test_id("actioned").inner_text()) == actioned_before + 1
    assert (await page.get_by_test_id("fp-rate").inner_text()) != "n/a"
    assert (await page.get_by_test_id("volume-chart").is_visible())
    await _shot(page, "console-overview.png")
    await page.goto("/console/users/discord/h1")
    assert "overturned: 1" in (await page.get_by_test_id("user-history").inner_text())
    await _close(page)


async def test_keyboard_review(browser: Any, stack: StackProcess, keys: dict[str, str], cases: dict[str, str]) -> None:
    page = await _page(browser, stack, keys["bob"])
    selected = page.locator("#queue-rows tr.selected")
    assert (await selected.get_attribute("data-case-id")) == cases["key_allow"]
    await page.keyboard.press("j")
    assert (await selected.get_attribute("data-case-id")) == cases["key_action"]
    await page.keyboard.press("k")
    assert (await selected.get_attribute("data-case-id")) == cases["key_allow"]
    await page.keyboard.press("?")
    assert (await page.get_by_role("dialog").is_visible())
    await page.keyboard.press("Escape")
    assert not (await page.get_by_role("dialog").is_visible())
    # Keys typed into a field are text, not commands.
    await page.get_by_label("Category").focus()
    await page.keyboard.press("j")
    assert (await selected.get_attribute("data-case-id")) == cases["key_allow"]
    await page.locator("h1").click()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/console/cases/{cases['key_allow']}")
    async with page.expect_navigation():
        await page.keyboard.press("c")
    assert "Claimed until" in (await page.get_by_test_id("flash").inner_text())
    note = page.get_by_label("Note (kept in the audit log)")
    await note.fill("")
    await note.press_sequentially("a look at x")
    assert page.url.endswith(cases["key_allow"]) and (await note.input_value()) == "a look at x"
    await page.locator("h1").click()
    async with page.expect_navigation():
        await page.keyboard.press("a")
    assert ": allow (no actions)" in (await page.get_by_test_id("flash").inner_text())
    assert _case(stack, cases["key_allow"])["review"]["reviewer"] == "bob"

    await page.keyboard.press("n")  # claim the next case and open it
    await page.wait_for_url(f"**/console/cases/{cases['key_action']}")
    await page.keyboard.press("1")  # the first action: delete
    assert (await page.locator("input[data-action-key='1']").is_checked())
    async with page.expect_navigation():
        await page.keyboard.press("x")
    flash = page.get_by_test_id("flash")
    assert ": action (delete applied)" in (await flash.inner_text()), (await flash.inner_text())
    await _close(page)


async def test_sensitive_messages_are_blurred_until_revealed_and_the_choice_is_kept(
        browser: Any, stack: StackProcess, keys: dict[str, str], cases: dict[str, str]) -> None:
    page = await _page(browser, stack, keys["alice"])
    await page.goto(f"/console/cases/{cases['threat']}")
    message = page.get_by_test_id("message")
    assert (await message.get_attribute("data-blurred")) == "true"
    assert "blurred" in ((await message.get_attribute("class")) or "")
    await page.get_by_role("button", name=re.compile("click to reveal")).click()
    assert "blurred" not in ((await message.get_attribute("class")) or "")
    assert THREAT in (await message.inner_text())
    await page.get_by_test_id("blur-toggle").click()  # stop blurring: stored on the server for alice
    await page.wait_for_url(f"**/console/cases/{cases['threat']}")
    assert (await page.get_by_test_id("message").get_attribute("data-blurred")) is None
    await _close(page)
    again = await _page(browser, stack, keys["alice"])  # a new browser session: the preference is the server's
    await again.goto(f"/console/cases/{cases['threat']}")
    assert (await again.get_by_test_id("message").get_attribute("data-blurred")) is None
    await _close(again)
    other = await _page(browser, stack, keys["bob"])  # and it is alice's alone
    await other.goto(f"/console/cases/{cases['threat']}")
    assert (await other.get_by_test_id("message").get_attribute("data-blurred")) == "true"
    await _close(other)


async def test_queue_refreshes_itself_and_a_stale_form_is_refused(browser: Any, stack: StackProcess,
                                                            keys: dict[str, str], cases: dict[str, str]) -> None:
    page = await _page(browser, stack, keys["bob"])
    await page.evaluate("window.__notReloaded = true")
    new_id = _ingest(stack, "take out the trash you are, loser", "late1", channel="offtopic")
    await page.locator(f"tr[data-case-id='{new_id}']").wait_for(timeout=60_000)
    assert (await page.evaluate("window.__notReloaded === true")), "the row must arrive without a page reload"
    await page.reload()  # the filter choices come from the queue as it was when the page loaded
    await page.get_by_label("Channel").select_option("offtopic")
    await page.get_by_role("button", name="Filter").click()
    # Count only once the filtered page has loaded (under load the count could see a half-parsed page).
    await page.wait_for_url("**/console/queue?*channel=offtopic*")
    await page.wait_for_load_state("domcontentloaded")
    await page.locator(f"#queue-rows tr[data-case-id='{new_id}']").wait_for(timeout=30_000)
    assert (await page.locator("#queue-rows tr[data-case-id]").count()) == 1
    # A form whose CSRF token does not match the session is refused and changes nothing.
    await page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.value = 'forged')")
    await page.locator(f"tr[data-case-id='{new_id}']").get_by_role("button", name="Claim").click()
    assert "CSRF check failed" in (await page.get_by_test_id("error").inner_text())
    assert _case(stack, new_id)["review"]["claimed_by"] is None
    await _close(page)


async def test_appeals_queue_decide(browser: Any, stack: StackProcess, keys: dict[str, str],
                                    cases: dict[str, str]) -> None:
    # The integration that sent the case files the appeal: an ingest key sees and appeals only its own cases.
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}) as http:
        r = await http.post("/v1/appeals", json={"case_id": cases["actioned"], "reason": "I was joking"})
    assert r.status_code == 201, r.text
    page = await _page(browser, stack, keys["alice"])
    await page.get_by_role("link", name="Appeals").click()
    row = page.locator(f"tr[data-appeal-id='{r.json()['id']}']")
    assert "I was joking" in (await row.inner_text())
    await row.get_by_label("Note").fill("the insult stands")
    await row.get_by_role("button", name="Uphold").click()
    assert "upheld" in (await page.get_by_test_id("flash").inner_text())
    assert _case(stack, cases["actioned"])["appeals"][-1]["status"] == "upheld"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/login")
    await page.goto("/console/appeals")
    assert "/console/login" in page.url
    await _close(page)


async def test_safety_demo_fills_the_console(browser: Any, stack: StackProcess, keys: dict[str, str],
                                             cases: dict[str, str]) -> None:
    """`safety demo` as a newcomer runs it (the stack's own settings and development key), then the
    console shows the raid's brigading flag and the appeal it filed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ops.cli.main", "demo", "--speed", "10", "--wait", "90", cwd=REPO, env=stack.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "sent 61 events" in text and "still running" not in text, text
    assert "brigading flag raised on streamer_sam" in text, text
    assert re.search(r"appeal \S+ filed against case", text), text
    page = await _page(browser, stack, keys["alice"])
    await page.goto("/console/queue?channel=live-chat")
    assert await page.locator("#queue-rows tr[data-case-id]").count() >= 1, "the raid's unsure cases wait for review"
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"X-API-Key": stack.key}) as http:
        raid = (await http.get("/v1/cases", params={"channel": "live-chat", "limit": 50})).json()["items"]
        flagged = [c["case_id"] for c in raid if "brigading" in " ".join(_case(stack, c["case_id"])["reasons"])]
    assert flagged, "the raid raised no brigading flag"
    await page.goto(f"/console/cases/{flagged[0]}")
    flag = await page.get_by_test_id("brigading").inner_text()
    assert re.search(r"brigading: (\d+) distinct authors aimed harmful messages at streamer_sam", flag), flag
    await page.goto("/console/appeals")
    assert "quoting a meme" in await page.get_by_test_id("appeals").inner_text()
    await _close(page)
