"""Shared test setup: S3 fixtures (moto in server mode, fault proxy), the demo-world fixtures and
Prefect's migrated database."""

pytest_plugins = ["tests.s3_support", "tests.world_support", "tests.web_support",
                  "tests.prefect_server_support"]
