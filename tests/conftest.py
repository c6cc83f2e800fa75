"""Shared test setup: the S3 fixtures (moto in server mode, fault proxy) for every test module."""

pytest_plugins = ["tests.s3_support"]
