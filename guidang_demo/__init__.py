"""Simulators of source systems for the demo world and the tests (unified over HTTP, self-built as databases)."""
