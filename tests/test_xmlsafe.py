"""Untrusted XML is refused before anything is expanded or fetched."""

from __future__ import annotations

import pytest

from engine.errors import DeployError
from engine.xmlsafe import parse_xml

OK = b'<?xml version="1.0"?>\n<root><child id="a"/></root>'


def refused(data: bytes, **kwargs: int) -> DeployError:
    with pytest.raises(DeployError) as info:
        parse_xml(data, "evil.bpmn", **kwargs)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].file == "evil.bpmn"
    return info.value


def test_plain_xml_parses_with_lines() -> None:
    tree = parse_xml(OK, "ok.bpmn")
    assert tree.getroot().find("child").sourceline == 2


def test_xxe_local_file_refused_and_not_leaked() -> None:
    data = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<r>&x;</r>"""
    err = refused(data)
    assert err.problems[0].line == 2
    assert "DOCTYPE" in str(err)
    assert "root:" not in str(err)


def test_external_network_entity_refused() -> None:
    data = b"""<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/evil">]><r>&x;</r>"""
    assert "DOCTYPE" in str(refused(data))


def test_billion_laughs_refused() -> None:
    lols = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    data = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{lols}]><r>&l9;</r>'.encode()
    assert "DOCTYPE" in str(refused(data))


def test_quadratic_blowup_refused() -> None:
    big = "A" * 50_000
    data = f'<!DOCTYPE r [<!ENTITY a "{big}">]><r>{"&a;" * 1000}</r>'.encode()
    assert "DOCTYPE" in str(refused(data))


def test_doctype_in_utf16_refused() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'.encode("utf-16")
    assert "DOCTYPE" in str(refused(data))


def test_undeclared_entity_is_malformed() -> None:
    assert "malformed" in str(refused(b"<r>&x;</r>"))


def test_oversized_refused_before_parsing() -> None:
    err = refused(OK + b" " * 100, max_bytes=len(OK))
    assert "limit" in str(err)


def test_malformed_reports_line() -> None:
    err = refused(b"<r>\n<a>\n</r>")
    assert err.problems[0].line == 3
    assert "malformed XML" in err.problems[0].message


def test_empty_is_malformed() -> None:
    refused(b"")
