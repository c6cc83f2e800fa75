"""Simulators of source systems (the unified system over HTTP, self-built systems as databases) for the demo world and the tests."""
