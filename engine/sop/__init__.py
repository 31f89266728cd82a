"""SOP tools: the YAML SOP source format, the source → BPMN importer, and the `alur sop` commands."""
