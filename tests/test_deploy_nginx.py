"""deploy/nginx/alur.conf and ALUR_PROXY_FIX together: every X-Forwarded-* header the app trusts is set by
nginx, never passed on from the client, and with ALUR_PROXY_FIX=1 the links the app draws follow what nginx
sets whatever the client sends. nginx is simulated from the file's own proxy_set_header lines: headers it does
not set pass through unchanged, as nginx does; an empty value means the header is not sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.db import Database
from engine.service import Alur
from web.app import create_app

CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "alur.conf"
TRUSTED = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix")  # ProxyFix in web/app.py
CLIENT_VARIABLES = re.compile(r"\$(http_\w+|proxy_add_x_forwarded_for|request_uri|args|arg_\w+|cookie_\w+)")


def proxy_headers() -> dict[str, str]:
    """proxy_set_header NAME VALUE of the location that proxies to the app (comments left out)."""
    text = "\n".join(line.split("#", 1)[0] for line in CONF.read_text().splitlines())
    blocks = [b for b in re.findall(r"location\s+\S+\s*\{(.*?)\}", text, re.S) if "proxy_pass" in b]
    assert len(blocks) == 1, "expected one proxying location in deploy/nginx/alur.conf"
    found = re.findall(r'proxy_set_header\s+(\S+)\s+("[^"]*"|\S+)\s*;', blocks[0])
    headers = {name.lower(): value.strip('"') for name, value in found}
    assert len(headers) == len(found), "a header is set twice"
    return headers


def through_nginx(client_headers: dict[str, str], remote_addr: str) -> dict[str, str]:
    """What the app receives from nginx for a request a client sent over https."""
    variables = {"$remote_addr": remote_addr, "$scheme": "https",
                 "$host": client_headers.get("Host", "alur.example.go.id").split(":")[0].lower()}
    upstream = {k.lower(): v for k, v in client_headers.items()}
    for name, value in proxy_headers().items():
        for var in re.findall(r"\$\w+", value):
            assert var in variables, f"the simulation does not know nginx's {var}"
            value = value.replace(var, variables[var])
        if value:
            upstream[name] = value
        else:
            upstream.pop(name, None)
    return upstream


def test_trusted_forwarded_headers_are_set_by_nginx_not_taken_from_the_client() -> None:
    headers = proxy_headers()
    for name in TRUSTED:
        assert name.lower() in headers, f"{name} is passed on from the client: set it (or to \"\") in alur.conf"
        assert not CLIENT_VARIABLES.search(headers[name.lower()]), f"{name} is built from what the client sent"
    assert headers["x-forwarded-for"] == "$remote_addr"  # one hop: overwritten, not appended
    assert headers["x-forwarded-prefix"] == "" or headers["x-forwarded-prefix"].startswith("/")


HOSTILE_CLIENT = {"Host": "alur.example.go.id", "X-Forwarded-Prefix": "/evil.example",
                  "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-For": "10.9.9.9",
                  "Forwarded": "for=10.9.9.9;host=evil.example"}


@pytest.mark.parametrize("client", [HOSTILE_CLIENT, {"Host": "alur.example.go.id"}])
def test_links_follow_what_nginx_sets(sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      client: dict[str, str]) -> None:
    monkeypatch.setenv("ALUR_PROXY_FIX", "1")
    app = create_app({"TESTING": True, "SECRET_KEY": "uji", "ALUR_INSTANCE_DIR": str(tmp_path)},
                     service=Alur(sqlite_db))
    upstream = through_nginx(client, remote_addr="203.0.113.9")
    response = app.test_client().get("/masuk", headers=upstream, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'href="/static/' in html and 'action="/masuk"' in html
    assert "evil.example" not in html
    redirect = app.test_client().get("/", headers=upstream, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith("/masuk")
    webapps = app.test_client().get("/.well-known/camunda-automation-platform/webapps", headers=upstream,
                                    environ_base={"REMOTE_ADDR": "127.0.0.1"}).json
    assert webapps["cockpitUrl"] == "https://alur.example.go.id/pengawasan/instances"
    assert upstream.get("x-forwarded-prefix") is None and upstream.get("forwarded") is None
