"""`alur sop …`: import a YAML SOP source into BPMN, render a BPMN SOP as the SOP AP document.

The main CLI adds this group (`main.add_command(sop)`); tests drive it with click's CliRunner.
"""

from __future__ import annotations

from pathlib import Path

import click

from engine.sop.importer import import_source
from engine.sop.source import SopSourceError, load_source_file


@click.group("sop")
def sop() -> None:
    """SOP tools: YAML source → BPMN, BPMN → SOP AP document."""


@sop.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the BPMN (default: bpmn/<key>.bpmn next to the sources folder's parent).")
def import_command(source: Path, output: Path | None) -> None:
    """Generate a Modeler-ready BPMN file (lanes, forms, mutu baku, DI) from a YAML SOP SOURCE."""
    try:
        parsed = load_source_file(source)
    except SopSourceError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(1) from exc
    xml = import_source(parsed)
    if output is None:
        # bpmn/sources/x.sop.yaml → bpmn/<key>.bpmn; elsewhere, beside the source.
        folder = source.parent.parent if source.parent.name == "sources" else source.parent
        output = folder / f"{parsed.key}.bpmn"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(xml)
    decisions = sum(1 for row in parsed.rows if row.decision)
    calls = sum(1 for row in parsed.rows if row.call)
    click.echo(
        f"wrote {output}: process {parsed.key!r}, {len(parsed.pelaksana)} lanes, {len(parsed.rows)} rows, "
        f"{decisions} decisions, {calls} call activities"
    )


@sop.command("render")
@click.argument("bpmn_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="OUT.html or OUT.pdf (the suffix picks the format).")
def render_command(bpmn_file: Path, output: Path) -> None:
    """Render BPMN_FILE as the SOP AP document (header table + flowchart table)."""
    suffix = output.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise click.UsageError("the output must end in .html or .pdf")
    from engine.sop import render  # lazy: rendering pulls in heavy dependencies (weasyprint)

    data = bpmn_file.read_bytes()
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        output.write_bytes(render.render_pdf(data, bpmn_file.name))
    else:
        output.write_text(render.render_html(data, bpmn_file.name), encoding="utf-8")
    click.echo(f"wrote {output}")
