"""Server-side rendering of Camunda Form `text` components: the small markdown subset stays safe and readable."""

from __future__ import annotations

import json

from engine.forms import load_form
from web.app import create_app
from web.formrender import render_form


def _form(text: str):  # type: ignore[no-untyped-def]
    schema = {"id": "Form_teks", "type": "default", "schemaVersion": 16,
              "components": [{"type": "text", "id": "t1", "text": text}]}
    return load_form(json.dumps(schema).encode(), "teks.form")


def test_bold_text_is_escaped_once_and_markup_is_never_live(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app({"SECRET_KEY": "x" * 40, "ALUR_INSTANCE_DIR": str(tmp_path),
                      "ALUR_DATABASE_URL": f"sqlite:///{tmp_path / 'a.sqlite3'}"})
    with app.test_request_context():
        html = str(render_form(_form("## Petunjuk\n**Dana & <b>BOS</b>** wajib\n<script>alert(1)</script>"), {}))
    assert "<strong>Dana &amp; &lt;b&gt;BOS&lt;/b&gt;</strong>" in html
    assert "&amp;amp;" not in html and "<script>" not in html and "<b>" not in html
    assert '<p class="form-heading">Petunjuk</p>' in html


def test_date_inputs_carry_the_supported_range(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The browser's picker keeps to the dates the server accepts (engine.moments: 1900-01-01 to 2199-12-31)."""
    schema = {"id": "Form_tgl", "type": "default", "schemaVersion": 16, "components": [
        {"type": "datetime", "key": "tgl", "id": "c1", "label": "Tanggal", "subtype": "date"},
        {"type": "datetime", "key": "kapan", "id": "c2", "label": "Kapan", "subtype": "datetime"},
    ]}
    form = load_form(json.dumps(schema).encode(), "tgl.form")
    app = create_app({"SECRET_KEY": "x" * 40, "ALUR_INSTANCE_DIR": str(tmp_path),
                      "ALUR_DATABASE_URL": f"sqlite:///{tmp_path / 'a.sqlite3'}"})
    with app.test_request_context():
        html = str(render_form(form, {}))
    assert 'type="date"' in html and 'min="1900-01-01" max="2199-12-31"' in html
    assert 'type="datetime-local"' in html and 'min="1900-01-01T00:00" max="2199-12-31T23:59"' in html
