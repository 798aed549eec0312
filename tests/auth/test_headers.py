"""Every answer carries security headers; the pages may run only the app's own scripts; other
sites' pages may not call the API unless an operator allows their origin."""

from __future__ import annotations

import httpx

from capacity.config import Settings
from tests.conftest import ServerThread


async def test_pages_and_api_answers_carry_the_security_headers(http):
    for path in ("/", "/dispatch", "/report", "/care", "/coordinator", "/healthz", "/api/v1/regions"):
        answer = await http.get(path)
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer", path
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy, path


async def test_the_api_docs_keep_working_without_the_page_policy(http):
    answer = await http.get("/docs")
    assert answer.status_code == 200 and "content-security-policy" not in answer.headers
    assert answer.headers["x-content-type-options"] == "nosniff"


async def test_other_sites_may_not_call_the_api_unless_their_origin_is_allowed(http, settings: Settings):
    asked = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"}
    refused = await http.options("/api/v1/regions", headers=asked)
    assert "access-control-allow-origin" not in refused.headers
    allowed = settings.model_copy(update={"cors_origins": ["https://roaz.example"]})
    with ServerThread(allowed) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            ok = await client.options("/api/v1/regions", headers={**asked, "Origin": "https://roaz.example"})
            other = await client.options("/api/v1/regions", headers=asked)
    assert ok.headers["access-control-allow-origin"] == "https://roaz.example"
    assert "access-control-allow-origin" not in other.headers
