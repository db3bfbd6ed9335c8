"""Drive full authorization-code sign-ins against an OpenID Provider and time them.

One sign-in, as a browser and its app would do it:

    GET authorize (PKCE S256, state, nonce, prompt=consent)
    -> the login form: hidden inputs (CSRF and the like) are sent back, the username
       and password filled in
    -> the consent form: "allow"
    -> the redirect to the client with ``code`` (``state`` and ``iss`` checked)
    -> POST token (authorization_code, client_secret_basic, code_verifier)
    -> GET userinfo with the access token (``sub`` must match the ID token's)

Each virtual user has its own ``requests.Session`` (so its own keep-alive connection
and cookie jar) and starts every sign-in with an empty cookie jar, so each one asks
for the password again and so costs one password check. ``prompt=consent`` makes the
consent page appear every time on both providers (Tessera would otherwise remember
the earlier consent; the peer's grant belongs to the cleared session). The forms are
found generically (the first POST form on the page), so the same client works with
Tessera's pages and the peer's.

Virtual users run as threads spread over several processes (``--processes``); each
process reports the CPU time it used, so the output says how much of the machine
the client itself took (``client_cpu_share`` is in cores).

Prints one JSON object: sign-ins/s, p50 and p99 in ms, errors and client cost.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import multiprocessing as mp
import os
import secrets
import signal
import statistics
import sys
import threading
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests


class SignInError(Exception):
    pass


class FormParser(HTMLParser):
    """The first POST form of a page: its action, its inputs and its submit buttons."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.action: str | None = None
        self.inputs: list[dict[str, str]] = []
        self.buttons: list[dict[str, str]] = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._in_form = True
            self.action = a.get("action", "")
        elif self._in_form and tag == "input":
            self.inputs.append(a)
        elif self._in_form and tag == "button" and a.get("name"):
            self.buttons.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


def fill_form(html: str, username: str, password: str) -> tuple[str, dict[str, str]]:
    """The form's action and the values to post: a login form or a consent form."""
    form = FormParser()
    form.feed(html)
    if form.action is None:
        raise SignInError("no POST form on the page")
    data: dict[str, str] = {}
    password_field = None
    text_fields = []
    for field in form.inputs:
        name = field.get("name")
        kind = field.get("type", "text").lower()
        if not name:
            continue
        if kind == "password":
            password_field = name
        elif kind in ("text", "email", ""):
            text_fields.append(name)
        elif kind not in ("submit", "button", "checkbox", "radio"):
            data[name] = field.get("value", "")
    if password_field is not None:
        if not text_fields:
            raise SignInError("a password form without a username field")
        data[text_fields[0]] = username
        data[password_field] = password
    else:
        allow = [b for b in form.buttons if b.get("value", "").lower() in ("allow", "yes")]
        if not allow:
            raise SignInError("a form that is neither a login nor a consent form")
        data[allow[0]["name"]] = allow[0]["value"]
    return form.action, data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Provider:
    def __init__(self, args: argparse.Namespace) -> None:
        meta = requests.get(
            args.issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=10
        )
        meta.raise_for_status()
        doc = meta.json()
        self.issuer = doc["issuer"]
        self.authorize = doc["authorization_endpoint"]
        self.token = doc["token_endpoint"]
        self.userinfo = doc["userinfo_endpoint"]
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.redirect_uri = args.redirect_uri
        self.username = args.username
        self.password = args.password
        self.scope = args.scope


def sign_in(p: Provider, s: requests.Session) -> None:
    """One complete sign-in; raises SignInError on anything unexpected."""
    s.cookies.clear()
    verifier = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(12)
    nonce = secrets.token_urlsafe(12)
    query = {
        "response_type": "code",
        "client_id": p.client_id,
        "redirect_uri": p.redirect_uri,
        "scope": p.scope,
        "state": state,
        "nonce": nonce,
        "prompt": "consent",
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    url = p.authorize + "?" + urlencode(query)
    resp = s.get(url, allow_redirects=False, timeout=30)
    code = None
    for _ in range(12):
        if resp.status_code in (301, 302, 303, 307, 308):
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(p.redirect_uri):
                got = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                if "code" not in got:
                    raise SignInError(f"redirected without a code: {got}")
                if got.get("state") != state or got.get("iss", p.issuer) != p.issuer:
                    raise SignInError("state or iss mismatch in the redirect")
                code = got["code"]
                break
            resp = s.get(location, allow_redirects=False, timeout=30)
        elif resp.status_code == 200 and "html" in resp.headers.get("Content-Type", ""):
            action, data = fill_form(resp.text, p.username, p.password)
            resp = s.post(urljoin(resp.url, action), data=data, allow_redirects=False, timeout=30)
        else:
            raise SignInError(f"HTTP {resp.status_code} at {urlsplit(resp.url).path}")
    if code is None:
        raise SignInError("too many steps before the redirect to the client")
    tok = s.post(
        p.token,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": p.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(p.client_id, p.client_secret),
        timeout=30,
    )
    if tok.status_code != 200:
        raise SignInError(f"token endpoint answered {tok.status_code}: {tok.text[:200]}")
    body = tok.json()
    claims = _jwt_claims(body["id_token"])
    if claims.get("nonce") != nonce or claims.get("aud") not in (p.client_id, [p.client_id]):
        raise SignInError("ID token nonce or aud mismatch")
    info = s.get(
        p.userinfo, headers={"Authorization": "Bearer " + body["access_token"]}, timeout=30
    )
    if info.status_code != 200 or info.json().get("sub") != claims["sub"]:
        raise SignInError(f"userinfo answered {info.status_code}")


def _virtual_user(
    p: Provider, start: float, measure_from: float, end: float, out: dict[str, Any]
) -> None:
    s = requests.Session()
    s.trust_env = False  # no proxy or netrc lookups per request: they cost more than HTTP
    while time.time() < start:
        time.sleep(0.005)
    while True:
        t0 = time.time()
        if t0 >= end:
            break
        try:
            sign_in(p, s)
        except (SignInError, requests.RequestException, KeyError, ValueError) as exc:
            t1 = time.time()
            if measure_from <= t1 <= end:
                out["errors"] += 1
                out.setdefault("first_error", f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)
            continue
        t1 = time.time()
        if measure_from <= t1 <= end:
            out["latencies"].append(t1 - t0)
    s.close()


def _process(args: argparse.Namespace, users: int, start: float, queue: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    p = Provider(args)
    measure_from = start + args.warmup
    end = measure_from + args.duration
    out: dict[str, Any] = {"latencies": [], "errors": 0}
    threads = [
        threading.Thread(target=_virtual_user, args=(p, start, measure_from, end, out))
        for _ in range(users)
    ]
    for t in threads:
        t.start()
    while time.time() < measure_from:
        time.sleep(0.01)
    cpu0 = time.process_time()
    for t in threads:
        t.join()
    out["cpu"] = time.process_time() - cpu0
    queue.put(out)


def run(args: argparse.Namespace) -> dict[str, Any]:
    processes = max(1, min(args.processes, args.users))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 0.5 + 0.1 * processes
    share = [
        args.users // processes + (1 if i < args.users % processes else 0) for i in range(processes)
    ]
    procs = [ctx.Process(target=_process, args=(args, n, start, queue)) for n in share]
    signal.signal(signal.SIGTERM, _exit_on_term)
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=args.warmup + args.duration + 120) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    errors = sum(r["errors"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    n = len(latencies)
    out: dict[str, Any] = {
        "issuer": args.issuer,
        "users": args.users,
        "processes": processes,
        "duration_s": args.duration,
        "signins": n,
        "errors": errors,
        "rate": n / args.duration,
        "p50_ms": _pct(latencies, 50) * 1000 if n else None,
        "p99_ms": _pct(latencies, 99) * 1000 if n else None,
        "mean_ms": statistics.fmean(latencies) * 1000 if n else None,
        "client_cpu_s": round(cpu, 3),
        "client_cpu_share": round(cpu / args.duration, 3),
        "client_cpu_per_signin_ms": round(cpu / n * 1000, 3) if n else None,
    }
    first = next((r["first_error"] for r in results if "first_error" in r), None)
    if first:
        out["first_error"] = first
    return out


def _exit_on_term(signum: int, frame: Any) -> None:
    """Stop the worker processes with this one (SIGTERM from the runner's clean-up)."""
    for child in mp.active_children():
        child.kill()
    os._exit(128 + signum)


def _pct(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    k = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--redirect-uri", required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--scope", default="openid profile email")
    ap.add_argument("--users", type=int, default=8, help="virtual users (concurrency)")
    ap.add_argument("--processes", type=int, default=2, help="client processes")
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    ap.add_argument("--once", action="store_true", help="one sign-in, then exit (a check)")
    args = ap.parse_args(argv)
    if args.once:
        p = Provider(args)
        with requests.Session() as s:
            t0 = time.time()
            sign_in(p, s)
        print(json.dumps({"ok": True, "ms": round((time.time() - t0) * 1000, 1)}))
        return 0
    result = run(args)
    print(json.dumps(result))
    return 0 if result["signins"] else 1


if __name__ == "__main__":
    sys.exit(main())
