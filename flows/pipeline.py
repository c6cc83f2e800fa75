"""Temporary: flows/cli.py still imports the nightly runner and the quarantine retry from here.

The stages now live in flows/night.py, flows/retry.py and the stage modules. This module goes when
the command line becomes the package flows/cli/ (which imports flows.night and flows.retry).
"""

from flows.night import run_nightly
from flows.retry import retry_quarantined

__all__ = ["retry_quarantined", "run_nightly"]
