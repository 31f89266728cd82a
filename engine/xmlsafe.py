"""Parse untrusted XML uploads (BPMN) without entity expansion, DTDs, or network access."""

from __future__ import annotations

from io import BytesIO

from lxml import etree

from engine.errors import DeployError, Problem

MAX_BPMN_BYTES = 5 * 1024 * 1024

# A DOCTYPE is never needed in BPMN; refusing it outright closes XXE and entity-expansion attacks
# before any parser sees the internal subset. UTF-16 variants catch a BOM-encoded payload.
_DOCTYPE_MARKERS = tuple(
    ("<!DOCTYPE".encode(enc), "\n".encode(enc)) for enc in ("utf-8", "utf-16-le", "utf-16-be")
)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _refuse(file_name: str, line: int | None, message: str) -> DeployError:
    return DeployError([Problem(file_name, line, None, message)])


def _doctype_line(data: bytes) -> int | None:
    """1-based line of a DOCTYPE declaration, None when there is none."""
    for marker, newline in _DOCTYPE_MARKERS:
        pos = data.find(marker)
        if pos >= 0:
            return data.count(newline, 0, pos) + 1
    return None


def parse_xml(data: bytes, file_name: str, max_bytes: int = MAX_BPMN_BYTES) -> etree._ElementTree:
    """Parse `data` safely or raise DeployError naming `file_name` (and the line where known)."""
    if len(data) > max_bytes:
        raise _refuse(file_name, None, f"file is {len(data)} bytes; the limit is {max_bytes} bytes")
    line = _doctype_line(data)
    if line is not None:
        raise _refuse(file_name, line, "DOCTYPE declarations are not allowed in BPMN files")
    try:
        tree = etree.parse(BytesIO(data), _parser())
    except etree.XMLSyntaxError as err:
        raise _refuse(file_name, err.lineno or None, f"malformed XML: {err.msg}") from None
    # Belt and braces: an encoding the byte scan missed still cannot smuggle a DTD through.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise _refuse(file_name, None, "DOCTYPE declarations are not allowed in BPMN files")
    return tree
