"""The real Temporal Web UI (served by the dev server `safety up` starts) shows a workflow's encrypted input
decrypted only to an operator signed in to the console in the same browser (issue 15). Debian's headless
chromium driven by Playwright, against one real stack for the module.

The UI keeps its codec settings in the browser's local storage (keys ``endpoint``, ``includeCredentials``
and ``overrideRemoteCodecConfiguration``, JSON values); ``safety up`` can only set the endpoint, so the test
sets what an operator sets in the "Codec Server" dialog ("Include cross-origin credentials", "Use my browser
setting") before the page loads, as the README tells them to.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.db import create_pool
from core.storage.keys import Role, create_key
from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.doubles.fake_llm import DEFAULT_RULES, FakeLLMServer
from tests.harness import StackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# Distinctive, ordinary chat (the fake LLM has no rule for it): found in the decoded input, and nowhere else.
MARKER = f"periwinkle-zeppelin-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(rules=[r.model_dump() for r in DEFAULT_RULES]) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLMServer) -> Iterator[StackProcess]:
    _require_chromium()
    s = StackProcess(tmp_path_factory.mktemp("webui"), llm.base_url)
    s.start()
    yield s
    s.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def moderator_key(stack: StackProcess) -> str:
    pool = await create_pool(stack.db_url, min_size=1, max_size=2)
    try:
        return await create_key(pool, name="carol", role=Role.MODERATOR, actor="test")
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def workflow_id(stack: StackProcess) -> str:
    event = {"event_type": "message", "platform": "discord", "channel_id": "general", "user_id": "friend",
             "author_id": "webui1", "content": f"see you at the {MARKER} tonight", "message_id": uuid.uuid4().hex}
    r = httpx.post(f"{stack.base_url}/v1/events/ingest", json=event, headers={"X-API-Key": stack.key}, timeout=30)
    assert r.status_code == 202, r.text
    return f"event-{r.json()['event_id']}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(stack: StackProcess) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


def _codec_settings(stack: StackProcess) -> str:
    """A script that, before the UI's own scripts run, stores what the Codec Server dialog stores."""
    endpoint = f"http://localhost:{stack.ports['api']}/console/codec"
    items = {"endpoint": json.dumps(endpoint), "includeCredentials": "true",
             "overrideRemoteCodecConfiguration": "true"}
    return (f"if (location.port === '{stack.ports['ui']}') {{ "
            + " ".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in items.items())
            + " }")


async def _context(browser: Any, stack: StackProcess) -> Any:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    await context.add_init_script(_codec_settings(stack))
    return context


async def _workflow_text(context: Any, stack: StackProcess, workflow_id: str, *, expect: bool,
                         timeout: float = 45) -> tuple[str, list[dict[str, Any]]]:
    """Open the workflow in the Web UI until its page shows the input; returns the page's text and the
    codec calls the page made (status, whether the console cookie rode along)."""
    page = await context.new_page()
    calls: list[dict[str, Any]] = []

    async def on_response(response: Any) -> None:
        if "/console/codec/" in response.url and response.request.method == "POST":
            headers = await response.request.all_headers()
            calls.append({"status": response.status, "cookie": "safety_console=" in headers.get("cookie", "")})

    page.on("response", on_response)
    url = f"http://localhost:{stack.ports['ui']}/namespaces/default/workflows/{workflow_id}"
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        await page.goto(url)
        try:
            await page.get_by_text("Input", exact=True).first.wait_for(timeout=10_000)
            await page.wait_for_load_state("networkidle")
        except Exception:  # noqa: BLE001 - the workflow may not be visible yet; retry
            pass
        text = await page.locator("body").inner_text()
        if (MARKER in text) == expect and calls:
            break
        await page.wait_for_timeout(1_000)
    await page.close()
    return text, calls


async def test_webui_decodes_input_only_for_a_signed_in_operator(
        browser: Any, stack: StackProcess, moderator_key: str, workflow_id: str) -> None:
    console = f"http://localhost:{stack.ports['api']}/console"
    signed_in = await _context(browser, stack)
    page = await signed_in.new_page()
    await page.goto(f"{console}/login")
    await page.get_by_label("API key").fill(moderator_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/queue")
    await page.close()

    text, calls = await _workflow_text(signed_in, stack, workflow_id, expect=True)
    assert MARKER in text, f"decoded input not shown; codec calls {calls}; page text: {text[:3000]}"
    assert calls and all(c["cookie"] for c in calls) and any(c["status"] == 200 for c in calls), calls
    await signed_in.close()

    anonymous = await _context(browser, stack)  # same UI codec settings, no console session
    text, calls = await _workflow_text(anonymous, stack, workflow_id, expect=False, timeout=25)
    assert MARKER not in text, "the Web UI showed the decrypted input without a console session"
    assert calls and all(c["status"] == 401 and not c["cookie"] for c in calls), calls
    # What the UI shows instead is the ciphertext: the payload's data, base64, under "Input".
    assert re.search(r'\bInput\n"[A-Za-z0-9+/]{200,}={0,2}"', text), text[-3000:]
    await anonymous.close()
