"""The LGSP client (shared/lgsp.py): session, dstcode, success codes, refusals, renewal on a refused session."""

from __future__ import annotations

import json

import httpx
import pytest

from shared.lgsp import LgspAuthFailed, LgspClient, LgspConfig, LgspRefused, LgspUnavailable, is_success


class FakeLgsp:
    """An LGSP in a MockTransport: sessions s1, s2, …; ``expire()`` makes the current ones invalid (code "-2")."""

    def __init__(self) -> None:
        self.sessions: set[str] = set()
        self.issued = 0
        self.requests: list[tuple[str, dict[str, str], dict]] = []
        self.answers: dict[str, dict] = {}
        self.down = False

    def expire(self) -> None:
        self.sessions.clear()

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.url.path, dict(request.headers), body))
        if self.down:
            return httpx.Response(503, text="maintenance")
        if request.headers.get("dstcode") != "DVCQG":
            return httpx.Response(200, json={"error_code": "-1", "error_message": "dstcode sai"})
        if request.url.path == "/lgsp/auth":
            if body != {"username": "u", "password": "p"}:
                return httpx.Response(200, json={"error_code": "401", "error_message": "Sai tài khoản"})
            self.issued += 1
            token = f"s{self.issued}"
            self.sessions.add(token)
            return httpx.Response(200, json={"session": token, "error_code": 0})
        if body.get("session") not in self.sessions:
            return httpx.Response(200, json={"error_code": "-2", "error_message": "Session hết hạn"})
        return httpx.Response(200, json=self.answers.get(body["service"], {"error_code": "00", "echo": body}))


def config(**overrides: object) -> LgspConfig:
    values: dict = dict(
        base_url="http://lgsp.test/lgsp", username="u", password="p", dstcode="DVCQG", madonvi="000.00.00.H56",
        auth_endpoint="/auth", integration_endpoint="/integration", session_invalid_codes=("-2",),
    )  # fmt: skip
    return LgspConfig(**(values | overrides))


@pytest.fixture
def lgsp() -> FakeLgsp:
    return FakeLgsp()


async def test_logs_in_once_and_posts_session_unit_service_with_dstcode(lgsp: FakeLgsp) -> None:
    async with LgspClient(config(), transport=httpx.MockTransport(lgsp.handler)) as client:
        first = await client.call("TraCuuHoSo", {"MaHoSo": "X-1"})
        await client.call("DongBoHoSoMC", {"isUpdating": "False", "data": [{"MaHoSo": "X-1"}]}, madonvi="000.05.12.H56")
    paths = [path for path, _, _ in lgsp.requests]
    assert paths == ["/lgsp/auth", "/lgsp/integration", "/lgsp/integration"]
    assert all(headers["dstcode"] == "DVCQG" for _, headers, _ in lgsp.requests)
    assert lgsp.requests[1][2] == {"session": "s1", "madonvi": "000.00.00.H56", "service": "TraCuuHoSo", "MaHoSo": "X-1"}
    assert lgsp.requests[2][2]["madonvi"] == "000.05.12.H56"
    assert first.body["error_code"] == "00"
    assert first.request.body["session"] == "***"  # the history never keeps the session


async def test_refused_session_logs_in_again_and_repeats_once(lgsp: FakeLgsp) -> None:
    async with LgspClient(config(), transport=httpx.MockTransport(lgsp.handler)) as client:
        await client.call("TraCuuHoSo", {"MaHoSo": "X-1"})
        lgsp.expire()
        answer = await client.call("TraCuuHoSo", {"MaHoSo": "X-2"})
        assert answer.relogged and client.logins == 2
    sent = [body.get("session") for path, _, body in lgsp.requests if path.endswith("integration")]
    assert sent == ["s1", "s1", "s2"]


async def test_concurrent_calls_on_an_expired_session_log_in_once(lgsp: FakeLgsp) -> None:
    import asyncio

    async with LgspClient(config(), transport=httpx.MockTransport(lgsp.handler)) as client:
        await client.call("TraCuuHoSo", {})
        lgsp.expire()
        await asyncio.gather(*(client.call("TraCuuHoSo", {"MaHoSo": str(i)}) for i in range(5)))
        assert client.logins == 2


async def test_session_older_than_its_ttl_is_renewed_before_use(lgsp: FakeLgsp) -> None:
    async with LgspClient(config(session_ttl_seconds=0.0), transport=httpx.MockTransport(lgsp.handler)) as client:
        await client.call("TraCuuHoSo", {})
        await client.call("TraCuuHoSo", {})
        assert client.logins == 2


async def test_refusal_carries_code_and_message(lgsp: FakeLgsp) -> None:
    lgsp.answers["DongBoHoSoMC"] = {"error_code": "-11", "error_message": "MaTTHC không tồn tại"}
    async with LgspClient(config(), transport=httpx.MockTransport(lgsp.handler)) as client:
        with pytest.raises(LgspRefused) as refused:
            await client.call("DongBoHoSoMC", {"data": []})
    assert refused.value.code == "-11" and refused.value.message == "MaTTHC không tồn tại"
    assert refused.value.body["error_code"] == "-11"
    assert client.logins == 1  # not a session refusal: no second login


async def test_an_answer_without_error_code_is_a_refusal(lgsp: FakeLgsp) -> None:
    lgsp.answers["TraCuuHoSo"] = {"result": "ok"}
    async with LgspClient(config(), transport=httpx.MockTransport(lgsp.handler)) as client:
        with pytest.raises(LgspRefused) as refused:
            await client.call("TraCuuHoSo", {})
    assert refused.value.code == "none"


async def test_wrong_credentials_refuse_the_login(lgsp: FakeLgsp) -> None:
    async with LgspClient(config(password="wrong"), transport=httpx.MockTransport(lgsp.handler)) as client:
        with pytest.raises(LgspAuthFailed) as refused:
            await client.call("TraCuuHoSo", {})
    assert refused.value.code == "401" and "Sai tài khoản" in str(refused.value)


async def test_down_or_unreachable_is_unavailable(lgsp: FakeLgsp) -> None:
    lgsp.down = True
    async with LgspClient(config(), transport=httpx.MockTransport(lgsp.handler)) as client:
        with pytest.raises(LgspUnavailable):
            await client.call("TraCuuHoSo", {})

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with LgspClient(config(), transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(LgspUnavailable):
            await client.call("TraCuuHoSo", {})


def test_success_codes() -> None:
    assert is_success("0") and is_success("00")
    assert not is_success(None) and not is_success("1") and not is_success("-1")
