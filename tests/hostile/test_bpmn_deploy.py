"""Hostile BPMN through the front door (POST /engine-rest/deployment/create, as Camunda Modeler sends it):
malformed XML, XXE (file, network, parameter entities), entity bombs, foreign encodings, script tasks and
listeners, unknown elements, expressions reaching for code in gateway conditions, timers and due dates, JUEL
the evaluator does not support, and a 50 MB upload. Each is refused with a clear message, nothing is stored,
nothing runs, and no file or URL is read."""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from engine.errors import ProcessError
from tests.hostile.helpers import World, basic, changed, listening, snapshot, web_files

FLOW = web_files()["web_flow.bpmn"].decode()
FORMS = {name: data for name, data in web_files().items() if name.endswith(".form")}
CONDITION = "${keputusan == 'ya'}"


def flow(old: str = "", new: str = "", text: str | None = None) -> bytes:
    source = FLOW if text is None else text
    if old:
        assert old in source, old
        source = source.replace(old, new, 1)
    return source.encode()


def with_condition(expression: str) -> bytes:
    return flow(CONDITION, escape(expression))


def timer_bpmn(kind: str = "timeDuration", text: str = "PT1H", due: str = "PT2H") -> bytes:
    """Kasubag works a step, then the process waits on a timer of `kind` with `text`, then a second step."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    id="Defs_hostile_timer" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="hostile_timer" name="Timer" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane" name="Kasubag"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>t1</bpmn:flowNodeRef><bpmn:flowNodeRef>w</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>t2</bpmn:flowNodeRef><bpmn:flowNodeRef>e</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="s" />
    <bpmn:userTask id="t1" name="Mengisi batas" camunda:dueDate={quoteattr(due)}>
      <bpmn:extensionElements><camunda:formData>
        <camunda:formField id="batas" label="Batas" type="string" />
      </camunda:formData></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:intermediateCatchEvent id="w" name="Tunggu"><bpmn:timerEventDefinition>
      <bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(text)}</bpmn:{kind}>
    </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="t2" name="Memeriksa" />
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f0" sourceRef="s" targetRef="t1" />
    <bpmn:sequenceFlow id="f1" sourceRef="t1" targetRef="w" />
    <bpmn:sequenceFlow id="f2" sourceRef="w" targetRef="t2" />
    <bpmn:sequenceFlow id="f3" sourceRef="t2" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


def deploy(world: World, files: dict[str, bytes], user: str = "desainer"):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"deployment-name": "hostile", "deployment-source": "Camunda Modeler"}
    for name, content in files.items():
        data[name] = (io.BytesIO(content), name, "text/xml")
    return world.app.test_client().post("/engine-rest/deployment/create", headers=basic(user), data=data,
                                        content_type="multipart/form-data")


def refused(world: World, files: dict[str, bytes], *needles: str, status: int = 400) -> str:
    """Deploy `files`; assert a clear refusal naming every needle, and that nothing at all was stored."""
    before = snapshot(world)
    response = deploy(world, files)
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:1000]
    assert response.is_json and response.json["message"]
    for needle in needles:
        assert needle in body, (needle, body[:1000])
    assert "root:x:0:0" not in body and "Traceback" not in body
    assert changed(before, snapshot(world)) == []
    return body


SECRET = Path("/etc/passwd")


# ------------------------------------------------------------------------------------------------ XML level

BILLION_LAUGHS = ('<!DOCTYPE d [<!ENTITY l0 "lol">'
                  + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)) + "]>")
QUADRATIC = f'<!DOCTYPE d [<!ENTITY a "{"A" * 100_000}">]>'


@pytest.mark.parametrize(("case", "content", "needle"), [
    ("truncated", FLOW[: len(FLOW) // 2].encode(), "malformed XML"),
    ("not xml", b"PK\x03\x04 this is a zip, not BPMN", "malformed XML"),
    ("empty", b"", "malformed XML"),
    ("invalid utf-8", flow().replace(b"Menyusun laporan", b"Menyusun \xff\xfe laporan"), "malformed XML"),
    ("nul byte", flow("Menyusun laporan", "Menyusun \x00 laporan"), "malformed XML"),
    ("unclosed tag", flow("</bpmn:process>", ""), "malformed XML"),
    ("xxe file", flow('<bpmn:definitions', f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{SECRET}">]>\n<bpmn:definitions')
     .replace(b'name="Menyusun laporan"', b'name="&x;"'), "DOCTYPE"),
    ("billion laughs", flow("<bpmn:definitions", BILLION_LAUGHS + "<bpmn:definitions")
     .replace(b'name="Menyusun laporan"', b'name="&l9;"'), "DOCTYPE"),
    ("quadratic blowup", flow("<bpmn:definitions", QUADRATIC + "<bpmn:definitions")
     .replace(b'name="Menyusun laporan"', b'name="' + b"&a;" * 2000 + b'"'), "DOCTYPE"),
    ("doctype in utf-16", flow('encoding="UTF-8"', 'encoding="UTF-16"').decode()
     .replace("<bpmn:definitions", '<!DOCTYPE d [<!ENTITY x "y">]><bpmn:definitions', 1).encode("utf-16"),
     "DOCTYPE"),
    ("deep nesting", flow().replace(
        b'<bpmn:startEvent id="StartEvent_1" name="Mulai">',
        b'<bpmn:startEvent id="StartEvent_1" name="Mulai"><bpmn:documentation>' + b"<a>" * 5000 + b"</a>" * 5000
        + b"</bpmn:documentation>"), "malformed XML"),
])
def test_malformed_and_entity_attacks_are_refused(world: World, case: str, content: bytes, needle: str) -> None:
    refused(world, {"hostile.bpmn": content, **FORMS}, needle, "hostile.bpmn")


def test_network_entities_make_no_request(world: World) -> None:
    """External general and parameter entities, an external DTD, XInclude and schemaLocation pointing at a
    local server: the server never hears from Alur."""
    with listening() as server:
        url = f"http://127.0.0.1:{server.port}"
        attacks = {
            "general": f'<!DOCTYPE d [<!ENTITY x SYSTEM "{url}/general">]>',
            "parameter": f'<!DOCTYPE d [<!ENTITY % p SYSTEM "{url}/parameter"> %p;]>',
            "external dtd": f'<!DOCTYPE d SYSTEM "{url}/dtd">',
        }
        for case, doctype in attacks.items():
            content = flow("<bpmn:definitions", doctype + "<bpmn:definitions")
            refused(world, {f"{case.replace(' ', '_')}.bpmn": content, **FORMS}, "DOCTYPE")
        # No DOCTYPE here, so the file is read; the include and the schema location must stay inert.
        include = (f'<bpmn:documentation><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}/xi" '
                   f'parse="text"/><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{SECRET}" '
                   'parse="text"/></bpmn:documentation>')
        content = flow('<bpmn:startEvent id="StartEvent_1" name="Mulai">',
                       '<bpmn:startEvent id="StartEvent_1" name="Mulai">' + include)
        content = content.replace(b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
                                  b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation='
                                  + f'"http://www.omg.org/spec/BPMN/20100524/MODEL {url}/xsd"'.encode())
        response = deploy(world, {"include.bpmn": content, **FORMS})
        body = response.get_data(as_text=True)
        assert "root:x:0:0" not in body
    assert server.connections == []
    if response.status_code == 200:  # accepted as text: the include was never expanded, anywhere
        definition_id = next(iter(response.json["deployedProcessDefinitions"]))
        xml = world.service.definition_xml(definition_id)
        assert "root:x:0:0" not in xml and "xi:include" in xml
        doc = world.client("admin").get(f"/pengawasan/definitions/{definition_id}/dokumen").get_data(as_text=True)
        assert "root:x:0:0" not in doc


@pytest.mark.parametrize("encoding", ["UTF-16", "ISO-8859-1"])
def test_files_not_in_utf8_get_a_clear_error(world: World, encoding: str) -> None:
    """Valid XML in another encoding used to pass every check and then fail storing (a 500)."""
    text = FLOW.replace('encoding="UTF-8"', f'encoding="{encoding}"').replace("Menyusun laporan", "Menyusun é")
    refused(world, {"latin.bpmn": text.encode(encoding.lower().replace("iso-8859-1", "latin-1")), **FORMS},
            "UTF-8", "latin.bpmn")


def test_path_in_resource_name_is_dropped(world: World) -> None:
    bpmn = flow('id="web_flow" name="Laporan Uji Web"', 'id="web_flow_path" name="Jalur"').replace(
        b'processRef="web_flow"', b'processRef="web_flow_path"')
    response = deploy(world, {"../../../tmp/evil.bpmn": bpmn, **FORMS})
    assert response.status_code == 200, response.json
    definition = next(iter(response.json["deployedProcessDefinitions"].values()))
    assert definition["resource"] == "evil.bpmn"
    assert not list(world.instance_dir.parent.rglob("evil.bpmn"))


# ------------------------------------------------------------------------------------------------ code

SENTINEL = "alur-hostile-sentinel"


def _sentinel(tmp: Path) -> Path:
    return tmp / SENTINEL


def test_script_task_is_refused_and_never_runs(world: World, tmp_path: Path) -> None:
    target = _sentinel(tmp_path)
    script = (f'<bpmn:scriptTask id="Script_1" name="Skrip" scriptFormat="python"><bpmn:script>'
              f'open({str(target)!r}, "w").write("ran")</bpmn:script></bpmn:scriptTask>')
    content = flow('<bpmn:endEvent id="EndEvent_1"', script + '<bpmn:endEvent id="EndEvent_1"')
    content = content.replace(b'<bpmn:sequenceFlow id="Flow_4" sourceRef="Step_3" targetRef="EndEvent_1" />',
                              b'<bpmn:sequenceFlow id="Flow_4" sourceRef="Step_3" targetRef="Script_1" />'
                              b'<bpmn:sequenceFlow id="Flow_5" sourceRef="Script_1" targetRef="EndEvent_1" />')
    refused(world, {"script.bpmn": content, **FORMS}, "script tasks are not allowed", "Script_1")
    assert not target.exists()


@pytest.mark.parametrize("listener", [
    '<camunda:executionListener event="start"><camunda:script scriptFormat="python">open({path!r}, "w")'
    "</camunda:script></camunda:executionListener>",
    '<camunda:taskListener event="create"><camunda:script scriptFormat="javascript">java.lang.Runtime.getRuntime()'
    ".exec('touch {path}')</camunda:script></camunda:taskListener>",
    '<camunda:executionListener class="org.example.Evil" event="end" />',
    '<camunda:taskListener expression="${runtime.exec(\'touch {path}\')}" event="complete" />',
    '<camunda:inputOutput><camunda:inputParameter name="x"><camunda:script scriptFormat="groovy">'
    "new File('{path}').text = 'ran'</camunda:script></camunda:inputParameter></camunda:inputOutput>",
])
def test_listeners_and_embedded_scripts_are_refused(world: World, tmp_path: Path, listener: str) -> None:
    """Camunda listeners and input/output scripts would silently do nothing in Alur: refuse them like script
    tasks, so a designer is told instead of getting a process that skips what they modelled."""
    target = _sentinel(tmp_path)
    extension = listener.replace("{path}", str(target))
    content = flow('<bpmn:userTask id="Step_2" name="Memeriksa laporan" camunda:formRef="Form_keputusan" '
                   'camunda:dueDate="P1D">',
                   '<bpmn:userTask id="Step_2" name="Memeriksa laporan" camunda:formRef="Form_keputusan" '
                   f'camunda:dueDate="P1D"><bpmn:extensionElements>{extension}</bpmn:extensionElements>')
    body = refused(world, {"listener.bpmn": content, **FORMS}, "Step_2", "listener.bpmn")
    assert "not supported" in body
    assert not target.exists()


@pytest.mark.parametrize(("element", "needle"), [
    ('<bpmn:magicTask id="Magic_1" />', "BPMN schema"),
    ('<evil:run xmlns:evil="urn:evil" id="Evil_1" command="rm -rf /" />', "BPMN schema"),
    ('<bpmn:serviceTask id="Svc_1" camunda:class="org.example.Evil" />', "service tasks are not supported"),
    ('<bpmn:serviceTask id="Svc_2" camunda:expression="${runtime.exec(\'id\')}" />', "service tasks"),
    ('<bpmn:businessRuleTask id="Dmn_1" camunda:decisionRef="evil" />', "business rule"),
    ('<bpmn:sendTask id="Send_1" />', "send tasks are not supported"),
])
def test_unknown_and_unsupported_elements_are_refused(world: World, element: str, needle: str) -> None:
    content = flow('<bpmn:endEvent id="EndEvent_1"', element + '<bpmn:endEvent id="EndEvent_1"')
    refused(world, {"unknown.bpmn": content, **FORMS}, needle)


# Expressions that try to reach code: each is refused when the BPMN is deployed, wherever it is written.
ESCAPES = [
    ("__import__('os').system('touch {path}')", "function calls"),
    ("keputusan.__class__.__mro__[1]", "attribute access"),
    ("().__class__.__bases__[0]", "attribute access"),
    ("__builtins__['open']", "'_'"),
    ("__builtins__", "'_'"),
    ("open('{path}', 'w')", "function calls"),
    ("eval('1')", "function calls"),
    ("getattr(keputusan, 'upper')", "function calls"),
    ("(lambda: 1)", "lambda"),
    ("lambda: __import__('os')", "lambda"),
    ("[c for c in [1]]", "comprehensions"),
    ("{k: v for k, v in [(1, 2)]}", "comprehensions"),
    ("(x for x in [1])", "comprehensions"),
    ("[y := 1]", "assignment"),
    ("f'{keputusan}'", "f-strings"),
    ("keputusan[0:1]", "constant key"),
    ("'a' * 10 ** 9", "'**'"),
    ("import os", "invalid expression"),
    ("keputusan == 'ya'; __import__('os')", "invalid expression"),
]
# Camunda JUEL that Alur's evaluator does not support: refused at deploy with the reason, never "false".
UNSUPPORTED_JUEL = [
    ("${execution.getVariable('keputusan') == 'ya'}", "function calls"),
    ("${execution.processBusinessKey != null}", "attribute access"),
    ("${task.assignee == 'camat'}", "attribute access"),
    ("${keputusan.equals('ya')}", "function calls"),
    ("${myBean.isApproved(keputusan)}", "function calls"),
    ("${authenticatedUserId == null ? 'a' : 'b'}", "invalid expression"),
    ("${empty keputusan}", "invalid expression"),
    ("${keputusan == 'ya'} and ${true}", "invalid expression"),
    ("${not empty keputusan}", "invalid expression"),
    ("${dateTime().plusDays(2)}", "function calls"),
]


@pytest.mark.parametrize(("expression", "needle"), ESCAPES + [(f"${{{e}}}", n) for e, n in ESCAPES[:6]]
                         + UNSUPPORTED_JUEL)
def test_gateway_conditions_reaching_for_code_are_refused(world: World, tmp_path: Path, expression: str,
                                                          needle: str) -> None:
    target = _sentinel(tmp_path)
    refused(world, {"cond.bpmn": with_condition(expression.replace("{path}", str(target))), **FORMS},
            "conditionExpression", needle, "Flow_yes")
    assert not target.exists()


@pytest.mark.parametrize("kind", ["timeDuration", "timeDate", "timeCycle"])
@pytest.mark.parametrize(("expression", "needle"), [
    ("${__import__('os').system('touch {path}')}", "function calls"),
    ("${batas.__class__}", "attribute access"),
    ("${[c for c in batas]}", "comprehensions"),
    ("${(lambda: 'PT1H')}", "lambda"),
    ("${execution.getVariable('batas')}", "function calls"),
    ("'PT1H' if __import__('os') else 'PT2H'", "function calls"),  # a quoted literal is evaluated too
])
def test_timer_expressions_reaching_for_code_are_refused(world: World, tmp_path: Path, kind: str, expression: str,
                                                         needle: str) -> None:
    target = _sentinel(tmp_path)
    refused(world, {"timer.bpmn": timer_bpmn(kind, expression.replace("{path}", str(target)))}, kind, needle,
            "timer.bpmn")
    assert not target.exists()


@pytest.mark.parametrize("attribute", ["dueDate", "followUpDate"])
def test_due_date_expressions_reaching_for_code_are_refused(world: World, tmp_path: Path, attribute: str) -> None:
    target = _sentinel(tmp_path)
    text = FLOW.replace('camunda:dueDate="PT2H"',
                        f'camunda:{attribute}={quoteattr("${open(" + repr(str(target)) + ", chr(119))}")}')
    refused(world, {"due.bpmn": text.encode(), **FORMS}, f"camunda:{attribute}", "function calls", "Step_1")
    assert not target.exists()


def test_timer_and_due_date_values_from_users_are_data_not_code(world: World, tmp_path: Path) -> None:
    """A designer may take a deadline from a form (`${batas}`). Whatever a user types there is a value, never
    evaluated again; nonsense or absurd durations (which used to walk the calendar for a minute, then crash) give
    a clear error and change nothing."""
    target = _sentinel(tmp_path)
    response = deploy(world, {"timer_ok.bpmn": timer_bpmn("timeDuration", "${batas}", due="${batas}")})
    assert response.status_code == 200, response.json
    kasubag = world.service.actor("kasubag")
    client = world.client("kasubag")
    hostile = [f"${{__import__('os').system('touch {target}')}}", "P99999999D", "PT99999999999H", "P1000000W",
               "P" + "9" * 5000 + "D", "besok pagi", "R/PT1S"]
    for n, value in enumerate(hostile):
        task_id = world.start(business_key=f"TIMER-{n}", key="hostile_timer")
        before = snapshot(world)
        with pytest.raises(ProcessError, match="gives no usable moment"):
            world.service.complete(task_id, kasubag, {"batas": value})
        page = client.post(f"/tugas/{task_id}", data={"batas": value, "action": "complete"})
        assert page.status_code == 422
        assert "Proses tidak dapat dilanjutkan" in page.get_data(as_text=True)
        assert changed(before, snapshot(world)) == []
        assert world.service.task(task_id).state == "READY"
    assert not target.exists()
    # The same model with a sensible value runs: the check above is about the values, not the model.
    task_id = world.start(business_key="TIMER-OK", key="hostile_timer")
    view = world.service.complete(task_id, kasubag, {"batas": "PT1H"})
    assert view.status == "running" and view.next_due_at is not None


# ------------------------------------------------------------------------------------------------ size


def test_50_mb_deployment_is_refused_before_it_is_read(world: World) -> None:
    big = FLOW.encode() + b"<!--" + b"x" * (50 * 1024 * 1024) + b"-->"
    body = refused(world, {"big.bpmn": big, **FORMS}, status=413)
    assert "RestException" in body


def test_resource_over_the_file_limit_is_refused(world: World) -> None:
    big = FLOW.encode() + b"<!--" + b"x" * (6 * 1024 * 1024) + b"-->"
    refused(world, {"big.bpmn": big, **FORMS}, "big.bpmn", "5 MB", status=413)  # as the web deploy page
