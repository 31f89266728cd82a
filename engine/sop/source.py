"""The YAML SOP source: an SOP AP table written as data, validated before it becomes BPMN.

`load_source(text, file_name)` returns a `SopSource` or raises `SopSourceError` listing every problem at
once, each naming the row ("row 7") and the YAML line, so a designer fixes the whole file in one pass.
The format is documented in docs/sop-format.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import DeployError, Problem
from engine.sop.durations import WaktuError, parse_waktu

# A process key / form id / called element becomes an XML id: keep it an NCName without dots or dashes
# so it is also a safe Python/FEEL identifier in logs and URLs.
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

HEADER_TEXT_FIELDS = (
    "nomor",
    "nama",
    "instansi",
    "unit",
    "alamat",
    "tanggal_pembuatan",
    "tanggal_revisi",
    "tanggal_efektif",
    "disahkan_oleh",
)
HEADER_LIST_FIELDS = ("dasar_hukum", "kualifikasi", "keterkaitan", "peralatan", "peringatan", "pencatatan")
_TOP_FIELDS = {
    "key",
    "pelaksana",
    "rows",
    "supervisor_role",
    "waktu_satuan",
    "history_time_to_live",
    *HEADER_TEXT_FIELDS,
    *HEADER_LIST_FIELDS,
}
_ROW_FIELDS = {
    "no",
    "uraian",
    "pelaksana",
    "kelengkapan",
    "waktu",
    "output",
    "keterangan",
    "form",
    "decision",
    "call",
    "inferred",
    "catatan_perancang",
}
_DECISION_FIELDS = {"question", "yes_label", "no_label", "no_goto"}
_LINE = "__line__"


class SopSourceError(DeployError):
    """A YAML SOP source is invalid. `problems` lists every problem, each naming its row and line.

    A subclass of `DeployError`, so callers that deploy sources handle it like any refused deployment.
    """


@dataclass(frozen=True)
class Decision:
    """The check after a verifikasi/koreksi/persetujuan row: "yes" continues, "no" loops to `no_goto`."""

    question: str
    no_goto: int
    yes_label: str = "Ya"
    no_label: str = "Tidak"


@dataclass(frozen=True)
class Row:
    """One procedure row of the SOP AP table."""

    no: int
    uraian: str
    pelaksana: str
    waktu: str
    due_date: str  # ISO 8601 duration of `waktu`
    kelengkapan: str = ""
    output: str = ""
    keterangan: str = ""
    form: str | None = None
    decision: Decision | None = None
    call: str | None = None
    inferred: str | None = None
    catatan_perancang: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class SopSource:
    """A whole SOP: header, pelaksana columns (in order) and rows (in order)."""

    key: str
    nama: str
    pelaksana: tuple[str, ...]
    rows: tuple[Row, ...]
    header: dict[str, str] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    supervisor_role: str = ""
    history_time_to_live: str = "P180D"
    file_name: str = "<source>"

    def row(self, no: int) -> Row:
        return next(r for r in self.rows if r.no == no)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records each mapping's 1-based start line under `__line__`."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    # Keys are taken as written: YAML 1.1 would otherwise turn the row key `no:` into False.
    loader.flatten_mapping(node)
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else loader.construct_object(key_node)
        mapping[key] = loader.construct_object(value_node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _text(value: Any) -> str:
    """YAML scalars as the SOP wrote them: numbers/dates become their text, None becomes ''."""
    if value is None:
        return ""
    return str(value).strip()


def load_source_file(path: str | Path) -> SopSource:
    path = Path(path)
    return load_source(path.read_text(encoding="utf-8"), path.name)


def load_source(text: str, file_name: str = "<source>") -> SopSource:
    """Parse and validate a YAML SOP source; raise `SopSourceError` with every problem found."""
    problems: list[Problem] = []

    def problem(message: str, line: int | None = None, element: str | None = None) -> None:
        problems.append(Problem(file=file_name, line=line, element_id=element, message=message))

    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem(f"not valid YAML: {exc}", mark.line + 1 if mark else None)
        raise SopSourceError(problems) from exc
    if not isinstance(data, dict):
        problem("the source must be a YAML mapping with key, nama, pelaksana and rows")
        raise SopSourceError(problems)

    top_line = data.pop(_LINE, 1)
    for unknown in sorted(set(data) - _TOP_FIELDS):
        problem(f"unknown field {unknown!r}", top_line)

    key = _text(data.get("key"))
    if not key:
        problem("missing 'key' (the process id, e.g. sop_pengukuran_kinerja_wangon)", top_line)
    elif not _KEY_RE.match(key):
        problem(f"key {key!r} must be letters, digits and underscores, not starting with a digit", top_line)
    nama = _text(data.get("nama"))
    if not nama:
        problem("missing 'nama' (the SOP's title)", top_line)

    header = {name: _text(data.get(name)) for name in HEADER_TEXT_FIELDS}
    lists: dict[str, tuple[str, ...]] = {}
    for name in HEADER_LIST_FIELDS:
        value = data.get(name) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(isinstance(item, dict | list) for item in value):
            problem(f"'{name}' must be a list of texts", top_line)
            value = []
        lists[name] = tuple(_text(item) for item in value if _text(item))

    waktu_satuan = _text(data.get("waktu_satuan")) or None

    columns_raw = data.get("pelaksana")
    columns: list[str] = []
    if not isinstance(columns_raw, list) or not columns_raw:
        problem("'pelaksana' must list the role columns in order, e.g. [Camat, Sekretaris]", top_line)
    else:
        for item in columns_raw:
            name = _text(item)
            if not name or isinstance(item, dict | list):
                problem(f"pelaksana {item!r} is not a role name", top_line)
            elif name in columns:
                problem(f"pelaksana {name!r} is listed twice", top_line)
            else:
                columns.append(name)

    supervisor_role = _text(data.get("supervisor_role")) or (columns[0] if columns else "")
    if columns and supervisor_role not in columns:
        # Allowed (e.g. an inspectorate role outside the table), but a typo is far more likely.
        problem(f"supervisor_role {supervisor_role!r} is not one of the pelaksana {columns}", top_line)

    rows_raw = data.get("rows")
    if not isinstance(rows_raw, list) or not rows_raw:
        problem("'rows' must be a non-empty list of procedure rows", top_line)
        rows_raw = []

    rows: list[Row] = []
    seen: dict[int, int | None] = {}
    pending_gotos: list[tuple[str, int | None, int]] = []
    last_no: int | None = None
    for index, raw in enumerate(rows_raw, start=1):
        if not isinstance(raw, dict):
            problem(f"row #{index} must be a mapping with no, uraian, pelaksana, waktu", top_line)
            continue
        line = raw.pop(_LINE, None)
        no_raw = raw.get("no")
        try:
            no = int(str(no_raw).strip().rstrip("."))
        except (TypeError, ValueError):
            problem(f"row #{index}: 'no' must be a row number, got {no_raw!r}", line, f"row #{index}")
            continue
        where = f"row {no}"

        for unknown in sorted(set(raw) - _ROW_FIELDS):
            problem(f"unknown field {unknown!r}", line, where)
        if no in seen:
            problem(f"duplicate row number {no} (also on line {seen[no]})", line, where)
        elif last_no is not None and no < last_no:
            problem(f"row numbers must increase: {no} comes after {last_no}", line, where)
        seen.setdefault(no, line)
        last_no = no if last_no is None else max(no, last_no)

        uraian = _text(raw.get("uraian"))
        if not uraian:
            problem("missing 'uraian'", line, where)
        pelaksana = _text(raw.get("pelaksana"))
        if not pelaksana:
            problem(f"missing 'pelaksana' (one of {columns})", line, where)
        elif columns and pelaksana not in columns:
            problem(f"unknown pelaksana {pelaksana!r}; the columns are {columns}", line, where)

        waktu = _text(raw.get("waktu"))
        due_date = ""
        try:
            due_date = parse_waktu(raw.get("waktu"), waktu_satuan)
        except WaktuError as exc:
            problem(f"unparseable waktu: {exc}", line, where)
        if waktu and waktu.isdigit() and waktu_satuan:
            waktu = f"{waktu} {waktu_satuan}"  # keep the unit the column header implied

        decision: Decision | None = None
        decision_raw = raw.get("decision")
        if decision_raw is not None:
            decision = _decision(decision_raw, line, where, problem)
            if decision is not None:
                pending_gotos.append((where, line, decision.no_goto))
                if decision.no_goto == no:
                    problem("decision no_goto points at its own row; loop back to the row that fixes",
                            line, where)

        call = _text(raw.get("call")) or None
        if call is not None and not _KEY_RE.match(call):
            problem(f"call {call!r} is not a process key", line, where)
        if call is not None and decision is not None:
            problem("a row cannot both call another SOP and be a decision", line, where)
        form = _text(raw.get("form")) or None
        if form is not None and not _KEY_RE.match(form):
            problem(f"form {form!r} is not a form id (e.g. Form_sakip_data)", line, where)
        if form is not None and call is not None:
            problem("a 'call' row runs another SOP and has no form of its own", line, where)

        rows.append(
            Row(
                no=no,
                uraian=uraian,
                pelaksana=pelaksana,
                waktu=waktu,
                due_date=due_date,
                kelengkapan=_text(raw.get("kelengkapan")),
                output=_text(raw.get("output")),
                keterangan=_text(raw.get("keterangan")),
                form=form,
                decision=decision,
                call=call,
                inferred=_text(raw.get("inferred")) or None,
                catatan_perancang=_text(raw.get("catatan_perancang")) or None,
                line=line,
            )
        )

    for where, line, goto in pending_gotos:
        if goto not in seen:
            problem(f"decision no_goto points to row {goto}, which does not exist", line, where)

    if problems:
        raise SopSourceError(problems)
    return SopSource(
        key=key,
        nama=nama,
        pelaksana=tuple(columns),
        rows=tuple(rows),
        header=header | {"nama": nama},
        lists=lists,
        supervisor_role=supervisor_role,
        history_time_to_live=_text(data.get("history_time_to_live")) or "P180D",
        file_name=file_name,
    )


def _decision(raw: Any, line: int | None, where: str, problem: Any) -> Decision | None:
    if not isinstance(raw, dict):
        problem("'decision' must be a mapping with question and no_goto", line, where)
        return None
    line = raw.pop(_LINE, line)
    for unknown in sorted(set(raw) - _DECISION_FIELDS):
        problem(f"unknown decision field {unknown!r}", line, where)
    question = _text(raw.get("question"))
    if not question:
        problem("decision needs a 'question' (the gateway's name)", line, where)
    try:
        goto = int(str(raw.get("no_goto")).strip().rstrip("."))
    except (TypeError, ValueError):
        problem(f"decision no_goto must be a row number, got {raw.get('no_goto')!r}", line, where)
        return None
    return Decision(
        question=question,
        no_goto=goto,
        yes_label=_text(raw.get("yes_label")) or "Ya",
        no_label=_text(raw.get("no_label")) or "Tidak",
    )
