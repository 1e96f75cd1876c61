"""Payload encryption: message content never reaches Temporal's history in plain text; operators read it
through the codec (in-process, or the /codec endpoint the Web UI and the temporal CLI use)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from api.app import create_app
from api.deps import CONSOLE_COOKIE
from core.codec import ENCODING, KEY_ID, AESGCMCodec, CodecError, KeyRing, key_ring, parse_keys
from core.settings import CodecSettings, LLMSettings, Settings
from core.storage.keys import Role
from domain.models import ModerateEventInput
from ops.embedded import find_binary, free_port
from tests.doubles.fake_llm import FakeLLMServer
from tests.production import production_settings
from workers.registry import running_worker
from workflows.contract import TASK_QUEUES, event_workflow_id
from workflows.moderate import ModerateEventWorkflow

UI_ORIGIN = "http://localhost:8233"
JWT_SECRET = "codec-test-jwt-secret-0123456789abcdef"


def _ring(*ids: str) -> KeyRing:
    return KeyRing(current=ids[0], keys={i: hashlib.sha256(i.encode()).digest() for i in ids})


# ----------------------------------------------------------------------------------------- the codec alone
async def test_rotation_old_keys_still_decrypt_and_the_new_key_encrypts() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"content": "hello"}')
    [old] = await AESGCMCodec(_ring("k1")).encode([plain])
    assert old.metadata["encoding"] == ENCODING and old.metadata[KEY_ID] == b"k1"
    assert b"hello" not in old.data
    rotated = AESGCMCodec(_ring("k2", "k1"))
    assert await rotated.decode([old]) == [plain]  # an old history stays readable
    [new] = await rotated.encode([plain])
    assert new.metadata[KEY_ID] == b"k2"
    with pytest.raises(CodecError, match="'k2', which is not in SAFETY_CODEC__KEYS"):
        await AESGCMCodec(_ring("k1")).decode([new])
    # a payload written before encryption was on passes through
    assert await rotated.decode([plain]) == [plain]


async def test_tampered_ciphertext_or_key_id_is_refused() -> None:
    codec = AESGCMCodec(_ring("k1", "k2"))
    [enc] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    flipped = Payload(metadata=dict(enc.metadata), data=enc.data[:-1] + bytes([enc.data[-1] ^ 1]))
    with pytest.raises(CodecError, match="failed authentication"):
        codec.decrypt(flipped)
    relabelled = Payload(metadata={**enc.metadata, KEY_ID: b"k2"}, data=enc.data)  # key id is authenticated
    with pytest.raises(CodecError, match="failed authentication"):
        codec.decrypt(relabelled)


def test_keys_from_settings_and_production_refuses_a_missing_key(tmp_path: Any) -> None:
    b64 = [base64.b64encode(os.urandom(32)).decode() for _ in range(2)]
    ring = parse_keys(f"new:{b64[0]}, old:{b64[1]}")
    assert ring.current == "new" and set(ring.keys) == {"new", "old"}
    for bad, why in (("k1", "without an id or key"), ("k1:!!!", "not valid base64"),
                     (f"k1:{base64.b64encode(b'short').decode()}", "AES-256 needs 32"), ("", "empty")):
        with pytest.raises(CodecError, match=why):
            parse_keys(bad)
    dev = Settings(data_dir=tmp_path)
    first = key_ring(dev)
    assert first is not None and (tmp_path / "payload-keys").stat().st_mode & 0o777 == 0o600
    assert key_ring(dev) == first  # every process of the stack reads the same generated key
    with pytest.raises(ValueError, match="SAFETY_CODEC__KEYS is not set"):
        production_settings(codec={})
    off = Settings(data_dir=tmp_path, codec=CodecSettings(enabled=False))
    assert key_ring(off) is None


# ----------------------------------------------------------------------------------------- a real case
@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest_asyncio.fixture(scope="module")
async def workers(settings: Settings, client: Client, pool: asyncpg.Pool,
                  llm: FakeLLMServer) -> AsyncIterator[Settings]:
    s = settings.model_copy(update={"llm": LLMSettings(base_url=llm.base_url, api_key="test")})
    async with contextlib.AsyncExitStack() as stack:
        for queue in TASK_QUEUES:
            await stack.enter_async_context(running_worker(client, queue, s))
        yield s


@pytest_asyncio.fixture(scope="module")
async def finished_case(api: httpx.AsyncClient, keys: dict[str, str], workers: Settings,
                        client: Client) -> tuple[str, str, WorkflowHistory]:
    """A clean and a risky case run to completion; returns (content marker, workflow id, history)."""
    marker = f"codecprobe{uuid.uuid4().hex[:12]}"
    content = f"you are a worthless idiot {marker}, nobody wants you here"
    r = await api.post("/v1/events/ingest", headers={"X-API-Key": keys["ingest"]},
                       json={"platform": "twitch", "channel_id": "codec", "user_id": "victim", "author_id": "a-1",
                             "content": content, "message_id": marker})
    assert r.status_code == 202, r.text
    wid = event_workflow_id(r.json()["event_id"])
    await asyncio.wait_for(client.get_workflow_handle(wid).result(), 60)
    return marker, wid, await client.get_workflow_handle(wid).fetch_history()


async def test_history_read_without_the_codec_holds_no_message_content(
        settings: Settings, finished_case: tuple[str, str, WorkflowHistory]) -> None:
    marker, wid, _ = finished_case
    raw = await Client.connect(settings.temporal_address)  # what Web UI / CLI access without the key sees
    history = await raw.get_workflow_handle(wid).fetch_history()
    blob = b"".join(e.SerializeToString() for e in history.events)
    assert marker.encode() not in blob
    assert b"worthless" not in blob and b"nobody wants you" not in blob
    assert len(history.events) > 10  # screening, context, reasoning, actions, record: all of it encrypted
    encodings = {p.metadata.get("encoding") for e in history.events
                 for p in e.workflow_execution_started_event_attributes.input.payloads}
    assert encodings == {ENCODING}
    # search attributes are not payloads the codec sees: they stay readable and queryable
    desc = await raw.get_workflow_handle(wid).describe()
    assert desc.search_attributes["CaseId"] == [wid.removeprefix("event-")]
    assert desc.search_attributes["Platform"] == ["twitch"]


async def test_with_the_codec_the_case_reads_as_before_and_replays(
        client: Client, finished_case: tuple[str, str, WorkflowHistory]) -> None:
    marker, _, history = finished_case
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = await client.data_converter.decode(started.input.payloads, [ModerateEventInput])
    assert isinstance(inp, ModerateEventInput) and marker in inp.event.content
    await Replayer(workflows=[ModerateEventWorkflow], data_converter=client.data_converter).replay_workflow(history)


async def test_after_rotation_old_histories_still_decrypt_and_replay(
        settings: Settings, client: Client, finished_case: tuple[str, str, WorkflowHistory]) -> None:
    marker, _, history = finished_case
    old = key_ring(settings)
    assert old is not None
    rotated = KeyRing(current="k-next", keys={"k-next": os.urandom(32), **old.keys})
    converter = replace(pydantic_data_converter, payload_codec=AESGCMCodec(rotated))
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = await converter.decode(started.input.payloads, [ModerateEventInput])
    assert marker in inp.event.content
    await Replayer(workflows=[ModerateEventWorkflow], data_converter=converter).replay_workflow(history)
    without_old = replace(pydantic_data_converter,
                          payload_codec=AESGCMCodec(KeyRing(current="k-next", keys={"k-next": os.urandom(32)})))
    with pytest.raises(CodecError, match="add the old key back"):
        await without_old.decode(started.input.payloads, [ModerateEventInput])


# ----------------------------------------------------------------------------------------- the endpoint
def _payloads_json(history: WorkflowHistory) -> dict[str, Any]:
    started = history.events[0].workflow_execution_started_event_attributes
    return {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                          "data": base64.b64encode(p.data).decode()} for p in started.input.payloads]}


@pytest_asyncio.fixture(scope="module")
async def jwt_api(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"jwt_secret": SecretStr(JWT_SECRET)}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c


async def test_codec_endpoint_refuses_without_an_operators_credentials(
        jwt_api: httpx.AsyncClient, keys: dict[str, str], finished_case: tuple[str, str, WorkflowHistory]) -> None:
    body = _payloads_json(finished_case[2])
    r = await jwt_api.post("/codec/decode", json=body, headers={"Origin": UI_ORIGIN})
    assert r.status_code == 401 and "operators only" in r.json()["detail"]
    assert r.headers["access-control-allow-origin"] == UI_ORIGIN  # the UI can show why
    assert finished_case[0] not in r.text
    r = await jwt_api.post("/codec/decode", json=body, headers={"X-API-Key": keys[Role.INGEST]})
    assert r.status_code == 403 and finished_case[0] not in r.text
    r = await jwt_api.post("/codec/decode", json=body, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = await jwt_api.post("/codec/encode", json=body)
    assert r.status_code == 401


async def test_codec_endpoint_decodes_for_admins_and_moderator_tokens(
        jwt_api: httpx.AsyncClient, keys: dict[str, str], finished_case: tuple[str, str, WorkflowHistory]) -> None:
    marker, _, history = finished_case
    now = int(time.time())
    token = jwt.encode({"sub": "ops-1", "role": "moderator", "aud": "safety-api", "iat": now, "exp": now + 300},
                       JWT_SECRET,
                       algorithm="HS256")
    for headers in ({"X-API-Key": keys[Role.ADMIN]}, {"Authorization": f"Bearer {keys[Role.ADMIN]}"},
                    {"X-API-Key": keys[Role.MODERATOR]}, {"Authorization": f"Bearer {token}"}):
        r = await jwt_api.post("/codec/decode", json=_payloads_json(history),
                               headers={**headers, "X-Namespace": "default"})
        assert r.status_code == 200, r.text
        [p] = r.json()["payloads"]
        assert base64.b64decode(p["metadata"]["encoding"]) == b"json/plain"
        assert marker in json.loads(base64.b64decode(p["data"]))["event"]["content"]
    # encode answers ciphertext that decode turns back
    plain = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                           "data": base64.b64encode(b'"hi"').decode()}]}
    h = {"X-API-Key": keys[Role.ADMIN]}
    enc = (await jwt_api.post("/codec/encode", json=plain, headers=h)).json()
    assert base64.b64decode(enc["payloads"][0]["metadata"]["encoding"]) == ENCODING
    assert (await jwt_api.post("/codec/decode", json=enc, headers=h)).json() == plain


async def test_codec_endpoint_cors_and_bad_input(jwt_api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    pre = await jwt_api.options("/codec/decode", headers={
        "Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    assert pre.headers["access-control-allow-credentials"] == "true"
    evil = await jwt_api.options("/codec/decode", headers={"Origin": "https://evil.example",
                                                          "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in evil.headers
    h = {"X-API-Key": keys[Role.ADMIN]}
    r = await jwt_api.post("/codec/decode", json={"payloads": [{"metadata": {"encoding": "%%%"}, "data": ""}]},
                           headers=h)
    assert r.status_code == 422 and "payloads.0.metadata.encoding" in r.json()["detail"]
    forged = {"payloads": [{"metadata": {"encoding": base64.b64encode(ENCODING).decode(),
                                         KEY_ID: base64.b64encode(b"nope").decode()},
                            "data": base64.b64encode(os.urandom(40)).decode()}]}
    r = await jwt_api.post("/codec/decode", json=forged, headers=h)
    assert r.status_code == 422 and "'nope'" in r.json()["detail"]


# ------------------------------------------------------------------------- the Web UI: the console's session
def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


async def _sign_in(browser: httpx.AsyncClient, key: str) -> str:
    """Sign the browser's cookie jar in to the console with ``key``; returns the session's CSRF token."""
    login = await browser.get("/console/login")
    r = await browser.post("/console/login", data={"csrf_token": _csrf(login.text), "api_key": key,
                                                    "next": "/console/queue"})
    assert r.status_code == 303, r.text
    queue = await browser.get("/console/queue")
    assert queue.status_code == 200
    return _csrf(queue.text)


async def test_web_ui_decodes_with_a_signed_in_console_session_and_only_then(
        jwt_api: httpx.AsyncClient, keys: dict[str, str], finished_case: tuple[str, str, WorkflowHistory]) -> None:
    """What the Web UI's credentialed fetch does: POST /console/codec/decode from the UI's origin, with the
    console's cookie (Path=/console) and no other credentials."""
    marker, _, history = finished_case
    body = _payloads_json(history)
    ui = {"Origin": UI_ORIGIN, "X-Namespace": "default"}
    anonymous = httpx.AsyncClient(transport=jwt_api._transport, base_url="http://test")  # noqa: SLF001
    async with anonymous:
        r = await anonymous.post("/console/codec/decode", json=body, headers=ui)
        assert r.status_code == 401 and "sign in to /console" in r.json()["detail"] and marker not in r.text
        assert r.headers["access-control-allow-origin"] == UI_ORIGIN  # the UI can show why
    for role in (Role.MODERATOR, Role.ADMIN):
        async with httpx.AsyncClient(transport=jwt_api._transport, base_url="http://test") as browser:  # noqa: SLF001
            csrf = await _sign_in(browser, keys[role])
            # the preflight (no cookie) and the answer both allow credentials, for the UI's origin
            pre = await browser.options("/console/codec/decode", headers={
                "Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace"})
            assert pre.status_code == 204 and pre.headers["access-control-allow-credentials"] == "true"
            r = await browser.post("/console/codec/decode", json=body, headers=ui)
            assert r.status_code == 200, r.text
            assert r.headers["access-control-allow-origin"] == UI_ORIGIN
            assert r.headers["access-control-allow-credentials"] == "true"
            [p] = r.json()["payloads"]
            assert marker in json.loads(base64.b64decode(p["data"]))["event"]["content"]
            # the cookie is scoped to /console: the CLI's /codec never sees it
            assert (await browser.post("/codec/decode", json=body, headers=ui)).status_code == 401
            # another origin (another app on localhost is same-site, so its fetch would carry the cookie):
            # no CORS answer, so its page cannot read anything, and the cookie is refused outright
            evil = {"Origin": "http://localhost:9999"}
            r = await browser.post("/console/codec/decode", json=body, headers=evil)
            assert r.status_code == 403 and marker not in r.text
            assert "access-control-allow-origin" not in r.headers
            assert "access-control-allow-credentials" not in r.headers
            pre = await browser.options("/console/codec/decode", headers={
                **evil, "Access-Control-Request-Method": "POST"})
            assert "access-control-allow-origin" not in pre.headers
            assert "access-control-allow-credentials" not in pre.headers
            # signed out: the same cookie no longer decrypts
            assert (await browser.post("/console/logout", data={"csrf_token": csrf})).status_code == 303
            r = await browser.post("/console/codec/decode", json=body, headers=ui)
            assert r.status_code == 401 and marker not in r.text


async def test_a_forged_or_stale_console_cookie_decodes_nothing(
        jwt_api: httpx.AsyncClient, finished_case: tuple[str, str, WorkflowHistory]) -> None:
    body = _payloads_json(finished_case[2])
    for cookie in ("forged", "x" * 500):
        r = await jwt_api.post("/console/codec/decode", json=body,
                               headers={"Origin": UI_ORIGIN, "Cookie": f"{CONSOLE_COOKIE}={cookie}"})
        assert r.status_code == 401 and finished_case[0] not in r.text


# ----------------------------------------------------------------------------------------- the temporal CLI
def _payload_texts(shown: str) -> list[tuple[str, str]]:
    """(encoding, data) of every payload in `temporal workflow show --output json` (both base64 there)."""
    found: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "data" in node and isinstance(node.get("metadata"), dict) and "encoding" in node["metadata"]:
                found.append((base64.b64decode(node["metadata"]["encoding"]).decode(),
                              base64.b64decode(node["data"]).decode(errors="replace")))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(shown))
    return found


async def test_temporal_cli_shows_content_only_through_the_codec_endpoint(
        settings: Settings, keys: dict[str, str], finished_case: tuple[str, str, WorkflowHistory]) -> None:
    marker, wid, _ = finished_case
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the API did not start"
            await asyncio.sleep(0.05)
        base = [str(find_binary("temporal")), "workflow", "show", "--workflow-id", wid,
                "--address", settings.temporal_address, "--output", "json"]

        async def show(*extra: str) -> str:
            proc = await asyncio.create_subprocess_exec(*base, *extra, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            return out.decode()

        plain = _payload_texts(await show())
        # inputs and results are ciphertext; the json/plain ones left are the search attributes
        assert "binary/encrypted" in {enc for enc, _ in plain}
        assert not any(marker in data for _, data in plain)
        decoded = _payload_texts(await show("--codec-endpoint", f"http://127.0.0.1:{port}/codec",
                                            "--codec-auth", f"Bearer {keys[Role.ADMIN]}"))
        assert "binary/encrypted" not in {enc for enc, _ in decoded}
        assert any(marker in data for _, data in decoded)
    finally:
        server.should_exit = True
        await serving
