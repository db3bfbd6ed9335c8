"""A real browser signs a user in: the login and consent pages, the redirect back, and
form_post's auto-submitting page under the real Content-Security-Policy.

The client's redirect URI does not exist; the browser's request to it is intercepted.
Without Chromium the tests are skipped, unless REQUIRE_BROWSER=1 (CI), which fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests

from tests.helpers import PASSWORD, REDIRECT, pkce_pair

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


@pytest.fixture(scope="module")
def browser() -> Iterator:
    executable = _chromium()
    if executable is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but Chromium is not installed")
        pytest.skip("Chromium is not installed (set REQUIRE_BROWSER=1 to require it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


class Callback:
    """Stands in for the client: records every request the browser makes to the redirect
    URI. A form post to it is answered here; a redirect to it is not interceptable, so it
    fails to load (nothing listens there), which changes nothing in what was sent."""

    def __init__(self, context):
        self.requests: list = []
        context.on("request", self._record)
        context.route(REDIRECT + "**", self._answer)

    def _record(self, request):
        if request.url.startswith(REDIRECT):
            self.requests.append(request)

    def _answer(self, route, request):
        route.fulfill(status=200, content_type="text/html", body="<p>client</p>")

    def params(self) -> dict[str, str]:
        assert len(self.requests) == 1, [r.url for r in self.requests]
        request = self.requests[0]
        if request.method == "POST":
            raw = request.post_data or ""
        else:
            raw = urlsplit(request.url).query
        return {k: v[0] for k, v in parse_qs(raw).items()}


def _sign_in(h, browser, response_mode: str | None = None):
    """Open /authorize, fill the login form, allow on the consent page."""
    user = h.create_user()
    client_id, secret = h.create_client()
    verifier, challenge = pkce_pair()
    extra = {"response_mode": response_mode} if response_mode else {}
    params = h.authorize_params(client_id, challenge, **extra)
    context = browser.new_context()
    try:
        callback = Callback(context)
        page = context.new_page()
        page.goto(h.url("/authorize?" + urlencode(params)))
        assert urlsplit(page.url).path == "/login"
        page.fill("#username", user.username)
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert urlsplit(page.url).path == "/consent"
        assert "Signed in as " + user.username in page.content()
        with page.expect_request(lambda r: r.url.startswith(REDIRECT)):
            page.click("button[name=decision][value=allow]")
        page.wait_for_load_state()
        cookies = context.cookies(h.base_url)
    finally:
        context.close()
    return user, client_id, secret, verifier, params, callback, cookies


def _check_tokens(h, user, client_id, secret, verifier, params, code):
    resp = h.exchange(client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    jwks = jwt.PyJWKSet.from_dict(requests.get(h.url("/jwks.json"), timeout=10).json())
    kid = jwt.get_unverified_header(body["id_token"])["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        body["id_token"], key.key, algorithms=["RS256"], audience=client_id, issuer=h.issuer
    )
    assert claims["sub"] == user.id
    assert claims["nonce"] == params["nonce"]


def test_browser_sign_in_redirects_back_with_code(h, browser):
    user, client_id, secret, verifier, params, callback, cookies = _sign_in(h, browser)
    assert callback.requests[0].method == "GET"
    assert callback.requests[0].is_navigation_request()
    # sent there by the provider's redirect after the consent form
    assert callback.requests[0].redirected_from.url == h.url("/consent")
    got = callback.params()
    assert got["state"] == params["state"]
    assert got["iss"] == h.issuer
    assert set(got) == {"code", "state", "iss"}
    # the sign-in session cookie is HttpOnly and SameSite=Lax
    session = [c for c in cookies if c["httpOnly"]]
    assert session, cookies
    assert all(c["sameSite"] == "Lax" for c in session)
    _check_tokens(h, user, client_id, secret, verifier, params, got["code"])


def test_browser_form_post_submits_under_the_csp(h, browser):
    """The auto-submitting script runs only if the CSP nonce is right: a real check."""
    user, client_id, secret, verifier, params, callback, _ = _sign_in(h, browser, "form_post")
    request = callback.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    got = callback.params()
    assert got["state"] == params["state"]
    assert got["iss"] == h.issuer
    _check_tokens(h, user, client_id, secret, verifier, params, got["code"])
