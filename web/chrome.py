"""The header every page draws, rendered once per (locale, menu, bell count) and then reused.

Drawing `_header.html` through Jinja cost ~0.45 ms a page (a dozen `url_for` and `gettext` calls), a tenth of
a task page. It holds nothing typed by users; its only per-request values, the CSRF token and the current path
the language switch returns to, are rendered as markers and filled in, escaped, for each request.
"""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from web.i18n import locale_code

# Markers cannot occur in the rendered header otherwise: NUL never reaches a template from the menu's texts.
_CSRF = "\x00alur-csrf\x00"
_NEXT = "\x00alur-next\x00"
_MAX_ENTRIES = 2048  # locales x menus x bell labels: a few hundred at most; the bound is only a guard


def page_header() -> Markup:
    cache: dict[tuple[object, ...], str] = current_app.extensions["alur_header_cache"]
    key = _key()
    html = cache.get(key)
    if html is None:
        html = render_template("_header.html", csrf=_CSRF, next_path=_NEXT)
        if not current_app.jinja_env.auto_reload and len(cache) < _MAX_ENTRIES:
            cache[key] = html
    return Markup(html.replace(_CSRF, escape(generate_csrf()))
                  .replace(_NEXT, escape(request.full_path.rstrip("?"))))


def _key() -> tuple[object, ...]:
    if not current_user.is_authenticated:
        return (locale_code(),)
    from web.supervisor import bell

    actor = current_user.actor
    return locale_code(), actor.is_admin, actor.is_designer, bell()["label"]


def init_app(app: Flask) -> None:
    app.extensions["alur_header_cache"] = {}
    app.jinja_env.globals["page_header"] = page_header
