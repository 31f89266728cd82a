"""Requests to /engine-rest that come from a web browser: the one rule against cross-site request forgery.

Why a rule is needed: the REST API takes credentials only from the Authorization header, never from a cookie,
but a browser that once answered an HTTP Basic prompt for this site keeps those credentials and attaches them
by itself to later requests to the same site, a form posted by another page included. So the presence of
`Authorization: Basic` proves nothing about who wrote the request.

What a page on another origin can make a browser send without asking this server first (no CORS preflight)
is a "simple request": method GET, HEAD or POST; a body that is urlencoded, multipart/form-data or
text/plain (or none); no header beyond the CORS-safelisted ones (Accept, Content-Type with those types, …).
An HTML form is one of them. Everything else is preflighted, and the preflight fails for any request that
carries the browser's stored credentials, because this server never answers
`Access-Control-Allow-Credentials: true` (`add_cors_headers` in web/rest/auth.py; a test keeps it so). A
request that went through a preflight therefore carries only an Authorization header its script set itself.

The rule, for POST, PUT, PATCH and DELETE from a browser (an `Origin` or any `Sec-Fetch-*` header present):
1. refused if it is a navigation or a no-cors request (`Sec-Fetch-Mode: navigate`/`no-cors`, or a
   `Sec-Fetch-Dest` other than `empty`): an HTML form, a redirected form, a no-cors `fetch`;
2. otherwise allowed only with a sign that a script wrote it, one a browser never adds on its own:
   - a method other than POST (PUT/PATCH/DELETE are never simple), or
   - a Content-Type other than the three form types, e.g. `application/json`, or
   - an `X-Requested-With` header (any value), or
   - `Authorization: Bearer …` (browsers store Basic credentials, never Bearer tokens), or
   - Camunda Modeler's deploy, which has none of these: `POST /deployment/create` from an Electron app
     (`Electron/` in User-Agent) with `Origin: null` (its file:// page), `Authorization: Basic`,
     `Accept: application/json` and, when the browser sends them, `Sec-Fetch-Mode: cors` and
     `Sec-Fetch-Site: cross-site`. A page can make a browser send all the rest (a simple fetch redirected
     through another site arrives with `Origin: null`, cross-site, cors), but not that User-Agent: browsers
     do not let a script set it, or (Firefox) only through a preflight, which fails with stored credentials.
Before all that, whatever the headers: a POST a browser sends by itself, with no preflight, to an address a page
names is refused. These are hyperlink auditing (`<a ping>`: `Content-Type: text/ping`, `Ping-To`/`Ping-From`;
over plain http Chromium sends no Sec-Fetch-*, and the stored credentials ride along) and violation reports
(CSP `report-uri`: `application/csp-report`; the Reporting API: `application/reports+json`). Their
Content-Types are not form types, so without this they would pass as "written by a script".
Non-browser clients (curl, scripts, Camunda's Java/Node clients: no Origin, no Sec-Fetch-*) are not concerned.
A refusal is a 403 with Camunda's error body, given before the credentials are checked.

And so that browsers do not store credentials in the first place: a 401 answers a browser with a Bearer
challenge, which no browser prompts for; only non-browser clients get `WWW-Authenticate: Basic`.
"""

from __future__ import annotations

from flask import Request, current_app

from web.rest.errors import RestError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The Content-Types a form or a simple request may carry (CORS-safelisted); "" is no body at all.
SIMPLE_CONTENT_TYPES = frozenset({"", "application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
# Sent by browsers on their own (hyperlink auditing, CSP and Reporting API reports): never a script's sign.
BEACON_CONTENT_TYPES = frozenset({"text/ping", "application/csp-report", "application/reports+json"})
MODELER_DEPLOY_ENDPOINT = "rest.deployments.create_deployment"
CHALLENGE_BASIC = 'Basic realm="Alur engine-rest"'
CHALLENGE_BROWSER = 'Bearer realm="Alur engine-rest"'  # no browser shows a prompt for it

REFUSED_MESSAGE = (
    "Refused: this browser request could have been sent by another web site (cross-site request forgery). "
    "A script in a browser must send JSON (Content-Type: application/json), an X-Requested-With header or a "
    "Bearer token (Camunda Modeler: choose Bearer token if HTTP Basic is refused); HTML forms and no-cors "
    "requests are never accepted. See docs/camunda-modeler.md, section 5a.")


def from_browser(request: Request) -> bool:
    """Browsers send Origin with every cross-origin POST (and `null` from sandboxed or redirected pages),
    and Sec-Fetch-* to https and localhost sites."""
    headers = request.headers
    return "Origin" in headers or any(name.lower().startswith("sec-fetch-") for name, _ in headers.items())


def looks_like_browser(request: Request) -> bool:
    """Wider than `from_browser`: also a plain navigation (address bar, link), which sends no Origin and, over
    http to another machine, no Sec-Fetch-* either, but always Accept: text/html…"""
    return (from_browser(request) or "Upgrade-Insecure-Requests" in request.headers
            or "text/html" in request.headers.get("Accept", "").lower())


def _auth_scheme(request: Request) -> str:
    return request.headers.get("Authorization", "").strip().partition(" ")[0].lower()


def _is_modeler_deploy(request: Request) -> bool:
    headers = request.headers
    accept = headers.get("Accept", "").lower()
    return (request.method == "POST" and request.endpoint == MODELER_DEPLOY_ENDPOINT
            and "Electron/" in headers.get("User-Agent", "")
            and headers.get("Origin") == "null" and _auth_scheme(request) == "basic"
            and "application/json" in accept and "text/html" not in accept
            and headers.get("Sec-Fetch-Mode", "cors") == "cors"
            and headers.get("Sec-Fetch-Site", "cross-site") == "cross-site")


def forgery_refusal(request: Request) -> str | None:
    """Why this request must be refused as possibly forged by another site, or None when it may go on."""
    if request.method not in UNSAFE_METHODS:
        return None
    if (request.mimetype or "") in BEACON_CONTENT_TYPES or "Ping-To" in request.headers \
            or "Ping-From" in request.headers:
        return REFUSED_MESSAGE
    if not from_browser(request):
        return None
    mode = request.headers.get("Sec-Fetch-Mode", "").lower()
    dest = request.headers.get("Sec-Fetch-Dest", "").lower()
    if mode in ("navigate", "nested-navigate", "no-cors") or dest not in ("", "empty"):
        return REFUSED_MESSAGE
    if request.method != "POST":
        return None
    if (request.mimetype or "") not in SIMPLE_CONTENT_TYPES:
        return None
    if "X-Requested-With" in request.headers or _auth_scheme(request) == "bearer":
        return None
    if _is_modeler_deploy(request):
        return None
    return REFUSED_MESSAGE


def guard(request: Request) -> None:
    """before_request: raise a 403 for a request another site could have forged (the rule above)."""
    reason = forgery_refusal(request)
    if reason is not None:
        current_app.logger.warning("engine-rest: refused %s %s as a possible cross-site forgery (Origin %r, "
                                   "Sec-Fetch-Mode %r)", request.method, request.path,
                                   request.headers.get("Origin", "")[:100],
                                   request.headers.get("Sec-Fetch-Mode", "")[:20])
        raise RestError(403, reason, "AuthorizationException")


def challenge(request: Request) -> str:
    """The WWW-Authenticate value of a 401: Basic only for clients that are not browsers."""
    return CHALLENGE_BROWSER if looks_like_browser(request) else CHALLENGE_BASIC
