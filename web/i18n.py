"""Bahasa Indonesia by default, English on request; dates in the unit's time zone, numbers in the user's locale.

Source strings are Indonesian; `translations/en` holds English. The .mo files are committed, and rebuilt
from the .po at start-up when missing or older, so a fresh checkout works without a build step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from flask import Flask, g, session
from flask_babel import Babel, get_locale, get_translations
from flask_babel import gettext as _gettext
from flask_babel import lazy_gettext as _lazy_gettext
from flask_login import current_user

LOCALES = ("id", "en")
DEFAULT_LOCALE = "id"
DEFAULT_TIMEZONE = "Asia/Jakarta"
TRANSLATIONS = Path(__file__).with_name("translations")

gettext = _gettext
lazy_gettext = _lazy_gettext


def compile_translations(directory: Path = TRANSLATIONS) -> None:
    for po_path in directory.glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parent.parent.name)
        tmp = mo_path.with_suffix(".mo.tmp")
        try:
            with tmp.open("wb") as fh:
                write_mo(fh, catalog)
            tmp.replace(mo_path)
        except OSError:  # a read-only install: use whatever .mo ships
            tmp.unlink(missing_ok=True)


def select_locale() -> str:
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale in LOCALES:
        return current_user.locale
    return DEFAULT_LOCALE


def locale_code() -> str:
    return str(get_locale() or DEFAULT_LOCALE)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def local_datetime(value: datetime | None, timezone: str | None = None, *, with_weekday: bool = True) -> str:
    """'Sen, 23 Nov 2026 09.00 WIB' in Indonesian, 'Mon, 23 Nov 2026 09:00 WIB' in English."""
    if value is None:
        return "–"
    return _local_datetime(value, timezone, locale_code(), with_weekday)


# Babel takes ~30 µs per date; an inbox page shows the same deadlines again and again.
@lru_cache(maxsize=8192)
def _local_datetime(value: datetime, timezone: str | None, loc: str, with_weekday: bool) -> str:
    zone = _zone(timezone)
    time_part = "HH.mm" if loc == "id" else "HH:mm"
    pattern = ("EEE, " if with_weekday else "") + f"d MMM y {time_part}"
    abbrev = value.astimezone(zone).tzname() or ""
    return f"{format_datetime(value, pattern, tzinfo=zone, locale=loc)} {abbrev}".strip()


def time_left(due: datetime | None, now: datetime) -> str:
    if due is None:
        return ""
    # Shown to the minute: rounded to it first (never to "0 minutes" while time is left), the same few hundred
    # texts serve every page.
    seconds = (due - now).total_seconds()
    minutes = round(seconds / 60)
    return _time_left(max(minutes, 1) if seconds > 0 else minutes, locale_code())


@lru_cache(maxsize=4096)
def _time_left(minutes: int, loc: str) -> str:
    return format_timedelta(timedelta(minutes=minutes), granularity="minute", threshold=1.5, add_direction=True,
                            locale=loc)


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        return format_decimal(value, locale=locale_code())
    return str(value)


def file_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{format_decimal(round(size / 1024, 1), locale=locale_code())} KB"
    return f"{format_decimal(round(size / (1024 * 1024), 1), locale=locale_code())} MB"


def _translations() -> Any:
    """flask_babel's translations for this request's locale. flask_babel looks them up again for every string
    (contexts, locale, cache dict), which cost ~1 ms per inbox page of 25 rows; here the lookup is kept for
    the request and redone only if the locale object changes (`flask_babel.force_locale`)."""
    locale = getattr(g.get("_flask_babel"), "babel_locale", None)
    cached = g.get("_alur_translations")
    if cached is not None and locale is not None and cached[0] is locale:
        return cached[1]
    translations = get_translations()  # also settles the request's locale
    g._alur_translations = (getattr(g.get("_flask_babel"), "babel_locale", None), translations)
    return translations


def init_app(app: Flask) -> None:
    compile_translations()
    Babel(app, default_locale=DEFAULT_LOCALE, default_translation_directories=str(TRANSLATIONS),
          locale_selector=select_locale, default_timezone=DEFAULT_TIMEZONE)
    app.jinja_env.install_gettext_callables(  # as flask_babel installs them, with the lookup kept per request
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.filters["localdt"] = local_datetime
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["filesize"] = file_size
    app.jinja_env.globals["time_left"] = time_left
    app.jinja_env.globals["locale_code"] = locale_code
