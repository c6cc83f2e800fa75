"""Shared test setup: S3 fixtures (moto in server mode, fault proxy) and the demo-world fixtures."""

pytest_plugins = ["tests.s3_support", "tests.world_support", "tests.web_support"]
