"""Server-side HTML for a `FormDefinition` (Camunda Form or camunda:formData): plain inputs, no JavaScript.

Every value is escaped with markupsafe. HTML constraints (required, min, max, minlength, maxlength) only help
the browser; the server checks every rule again (`engine.forms.validate_submission`). `pattern` is not
copied to HTML: form-js searches anywhere in the value while HTML anchors the whole value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

from engine import forms
from engine.forms import Component, Field, FormDefinition
from engine.moments import FIRST_DAY, LAST_DAY
from web.i18n import gettext as _


def _raw(values: Any, key: str, multi: bool = False) -> Any:
    if hasattr(values, "getlist"):
        items = values.getlist(key)
        return items if multi else (items[0] if items else None)
    value = values.get(key) if isinstance(values, Mapping) else None
    if multi:
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return value


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "true"
    return str(value)


def _attrs(**attrs: Any) -> Markup:
    out = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        out.append(Markup(" {}").format(name) if value is True else Markup(' {}="{}"').format(name, value))
    return Markup("").join(out)


def _typed(f: Field, raw: Any) -> Any:
    """Submitted text as the type a FEEL expression expects (a preview only: the server recomputes)."""
    if f.type == "number" and isinstance(raw, str):
        try:
            return float(raw) if raw.strip() else None
        except ValueError:
            return None
    return raw


def _number_text(n: int | float | None) -> str | None:
    if n is None:
        return None
    return f"{n:g}" if isinstance(n, float) else str(n)


def _markdown(text: str) -> Markup:
    """A safe subset for `text` components: headings, paragraphs, **bold**; everything else is text."""
    blocks = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = []
        for line in para.split("\n"):
            heading = re.match(r"^(#{1,6})\s+(.*)$", line)
            if heading:
                blocks.append(Markup('<p class="form-heading">{}</p>').format(heading.group(2)))
                continue
            # The line is escaped first, so the bold text is already safe: formatting it into Markup would
            # escape it twice (& → &amp;amp;).
            lines.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", str(escape(line))))
        if lines:
            blocks.append(Markup("<p>{}</p>").format(Markup("<br>".join(lines))))
    return Markup("").join(blocks)


class _Renderer:
    def __init__(self, form: FormDefinition, values: Any, errors: Mapping[str, list[str]], disabled: bool):
        self.form = form
        self.values = values
        self.errors = errors
        self.disabled = disabled

    def render(self) -> Markup:
        return Markup("").join(self.component(c) for c in self.form.components)

    def component(self, c: Component) -> Markup:
        if c.type == "text":
            return Markup('<div class="form-text">{}</div>').format(_markdown(c.text))
        if c.type == "group":
            inner = Markup("").join(self.component(child) for child in c.components)
            legend = Markup("<legend>{}</legend>").format(c.label) if c.label else Markup("")
            return Markup('<fieldset class="group">{}{}</fieldset>').format(legend, inner)
        if c.field is None:
            return Markup("")
        return self.field(c.field)

    def field(self, f: Field) -> Markup:
        fid = f"f-{f.key}"
        errors = self.errors.get(f.key) or []
        described = []
        help_html = Markup("")
        if f.description:
            help_html += Markup('<small class="help" id="{}-help">{}</small>').format(fid, f.description)
            described.append(f"{fid}-help")
        if f.hide:
            help_html += Markup('<small class="help">{}</small>').format(
                _("Isi hanya bila berlaku sesuai pilihan lain."))
        error_html = Markup("")
        if errors:
            error_html = Markup('<p class="error" id="{}-err" role="alert">{}</p>').format(
                fid, "; ".join(errors))
            described.append(f"{fid}-err")
        common = {"aria_describedby": " ".join(described) or None, "aria_invalid": "true" if errors else None}
        required = f.required and not f.hide  # a hidden-by-condition field must not block the browser
        mark = Markup(' <span class="req" aria-hidden="true">*</span>') if f.required else Markup("")
        label = Markup("{}{}").format(f.label or f.key, mark)
        cls = "field has-error" if errors else "field"

        if f.type in ("radio", "checklist"):
            multi = f.type == "checklist"
            chosen = set(_raw(self.values, f.key, multi=True)) if multi else {_text(_raw(self.values, f.key))}
            kind = "checkbox" if multi else "radio"
            options = Markup("").join(
                Markup('<label class="choice"><input{}> {}</label>').format(_attrs(
                    type=kind, name=f.key, value=value, checked=value in chosen, disabled=self.disabled,
                    required=required and not multi and i == 0), text)
                for i, (value, text) in enumerate(f.options))
            return Markup('<fieldset class="{}" id="{}"{}><legend>{}</legend>{}{}{}</fieldset>').format(
                cls, fid, _attrs(**common), label, help_html, options, error_html)

        if f.type == "checkbox":
            checked = _text(_raw(self.values, f.key)).lower() in ("true", "on", "1", "yes", "ya")
            box = Markup("<input{}>").format(_attrs(type="checkbox", id=fid, name=f.key, value="true",
                                                    checked=checked, disabled=self.disabled, required=required,
                                                    **common))
            return Markup('<div class="{} check"><label for="{}">{} {}</label>{}{}</div>').format(
                cls, fid, box, label, help_html, error_html)

        if f.type == "expression":
            context = {x.key: _typed(x, _raw(self.values, x.key)) for x in self.form.fields}
            try:
                value = forms.evaluate_feel(f.expression or "=null", context) if f.expression else None
            except forms.FeelError:
                value = None
            shown = _text(value) if value is not None else _("dihitung saat dikirim")
            return Markup('<div class="{}"><span class="label">{}</span><output id="{}">{}</output>{}</div>').format(
                cls, label, fid, shown, help_html)

        control = self.control(f, fid, required, common)
        return Markup('<div class="{}"><label for="{}">{}</label>{}{}{}</div>').format(
            cls, fid, label, control, help_html, error_html)

    def control(self, f: Field, fid: str, required: bool, common: dict[str, Any]) -> Markup:
        value = _text(_raw(self.values, f.key))
        readonly = f.readonly
        if readonly and not value:
            value = _text(f.default)
        base = {"id": fid, "name": f.key, "disabled": self.disabled, "readonly": readonly,
                "required": required and not readonly, **common}
        if f.type == "textarea":
            return Markup("<textarea{}>{}</textarea>").format(
                _attrs(rows=4, minlength=f.min_length, maxlength=f.max_length, **base), value)
        if f.type == "select":
            opts = [Markup('<option value="">{}</option>').format(_("— pilih —"))]
            opts += [Markup("<option{}>{}</option>").format(_attrs(value=v, selected=v == value), text)
                     for v, text in f.options]
            return Markup("<select{}>{}</select>").format(_attrs(**base), Markup("").join(opts))
        if f.type == "number":
            step: str = "any"
            if f.increment is not None:
                step = _number_text(f.increment) or "any"
            elif f.decimal_digits is not None:
                step = "1" if f.decimal_digits == 0 else f"0.{'0' * (f.decimal_digits - 1)}1"
            return Markup("<input{}>").format(_attrs(
                type="number", inputmode="decimal", value=value, min=_number_text(f.min), max=_number_text(f.max),
                step=step, **base))
        if f.type == "datetime":
            kind = {"date": "date", "time": "time", "datetime": "datetime-local"}.get(f.subtype or "date", "date")
            if kind == "datetime-local" and len(value) > 16 and value[10:11] == "T":
                value = value[:16]  # an ISO value with seconds/offset: what the input accepts
            # The browser's own picker keeps to the range the server accepts (engine.moments).
            bounds = {"date": (FIRST_DAY.isoformat(), LAST_DAY.isoformat()),
                      "datetime-local": (f"{FIRST_DAY.isoformat()}T00:00", f"{LAST_DAY.isoformat()}T23:59")}
            low, high = bounds.get(kind, (None, None))
            return Markup("<input{}>").format(_attrs(type=kind, value=value, min=low, max=high, **base))
        input_type = "text"
        if f.validation_type == "email":
            input_type = "email"
        elif f.validation_type == "phone":
            input_type = "tel"
        return Markup("<input{}>").format(_attrs(type=input_type, value=value, minlength=f.min_length,
                                                 maxlength=f.max_length, **base))


def render_form(form: FormDefinition, values: Any, errors: Mapping[str, list[str]] | None = None, *,
                disabled: bool = False) -> Markup:
    """The form's fields as HTML (without the <form> element). `values` is a dict or the submitted MultiDict."""
    html = _Renderer(form, values or {}, errors or {}, disabled).render()
    general = (errors or {}).get(forms.FORM_ERROR_KEY)
    if general:
        html = Markup('<p class="error" role="alert">{}</p>').format("; ".join(general)) + html
    return html
