#!/usr/bin/env node
// Camunda Modeler compatibility check for Alur's BPMN files (DESIGN.md §5).
//   node tests/node/check_bpmn.mjs FILE.bpmn…
// For each file: import with bpmn-moddle + camunda-bpmn-moddle (any warning fails, as the Modeler would show
// an import warning), lint with bpmnlint:recommended + camunda-compat for Camunda 7.24 (any error or warning fails),
// and check every participant, lane, flow node and sequence flow has a DI shape/edge.
// Prints one JSON document {ok, files: [{file, ok, warnings, lint, missingDi}]}; exit 0 only if all pass.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { BpmnModdle } from 'bpmn-moddle';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json' with { type: 'json' };

// Resolve lint plugins from the repository root, whatever the caller's working directory.
const require = createRequire(new URL('../../package.json', import.meta.url));
const { Linter } = require('bpmnlint');
const NodeResolver = require('bpmnlint/lib/resolver/node-resolver');

const LINT_CONFIG = {
  extends: ['bpmnlint:recommended', 'plugin:camunda-compat/camunda-platform-7-24'],
};

const DI_TYPES = ['bpmn:Participant', 'bpmn:Lane', 'bpmn:FlowNode', 'bpmn:SequenceFlow'];

function collect(element, seen, out) {
  // Walk the semantic model (not the DI) and gather every element that must be drawn.
  if (!element || typeof element !== 'object' || seen.has(element)) return;
  seen.add(element);
  if (element.$instanceOf && DI_TYPES.some((type) => element.$instanceOf(type))) out.add(element.id);
  const children = [
    element.rootElements, element.participants, element.flowElements, element.laneSets, element.lanes,
    element.childLaneSet ? [element.childLaneSet] : undefined,
  ];
  for (const list of children) for (const child of list || []) collect(child, seen, out);
}

function drawnIds(definitions) {
  const ids = new Set();
  for (const diagram of definitions.diagrams || []) {
    for (const el of diagram.plane?.planeElement || []) if (el.bpmnElement) ids.add(el.bpmnElement.id);
  }
  return ids;
}

async function checkFile(file) {
  const result = { file, ok: false, warnings: [], lint: [], missingDi: [] };
  const xml = await readFile(file, 'utf8');
  const moddle = new BpmnModdle({ camunda: camundaModdle });
  let definitions;
  try {
    const parsed = await moddle.fromXML(xml, 'bpmn:Definitions');
    definitions = parsed.rootElement;
    result.warnings = (parsed.warnings || []).map((w) => w.message);
  } catch (err) {
    result.warnings.push(`import failed: ${err.message}`);
    return result;
  }

  const linter = new Linter({ config: LINT_CONFIG, resolver: new NodeResolver({ require }) });
  const reports = await linter.lint(definitions);
  for (const [rule, items] of Object.entries(reports)) {
    for (const item of items) {
      const category = item.category || 'error';
      result.lint.push({ rule, id: item.id, message: item.message, category });
    }
  }

  const needed = new Set();
  collect(definitions, new Set(), needed);
  const drawn = drawnIds(definitions);
  result.missingDi = [...needed].filter((id) => !drawn.has(id)).sort();

  // Errors and warnings both fail (the Modeler shows both); 'info' (e.g. "configure history TTL on the
  // process or engine level") is advice only.
  const lintErrors = result.lint.filter((r) => r.category === 'error' || r.category === 'warn');
  result.ok = result.warnings.length === 0 && lintErrors.length === 0 && result.missingDi.length === 0;
  return result;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node tests/node/check_bpmn.mjs FILE.bpmn…');
  process.exit(2);
}
const results = [];
for (const file of files) results.push(await checkFile(file));
const ok = results.every((r) => r.ok);
console.log(JSON.stringify({ ok, files: results }, null, 2));
process.exit(ok ? 0 : 1);
