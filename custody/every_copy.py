"""Every copy of the archive at once, for the steps that must reach each one: a hold, an approval
that moves a retention date, a destruction. The command line and the console open it the same way,
and both refuse to act while a copy cannot be opened (a step done on some copies only would leave
a copy that still deletes, or still keeps, what the ledger says it should not)."""

from __future__ import annotations

from connectors.repositories import open_with_replicas
from connectors.repositories.base import Repository
from schemas.config import Settings
from schemas.findings import GuidangError


class CopyUnavailable(GuidangError):
    """A copy of the archive cannot be opened: holds, approvals and destructions wait for it."""


def open_every_copy(settings: Settings) -> Repository:
    """The primary with its replicas; CopyUnavailable (naming each) when one of them cannot be opened."""
    repository = open_with_replicas(settings)
    behind = getattr(repository, "behind", {})
    if behind:
        raise CopyUnavailable("a copy of the archive cannot be opened, and a hold or a destruction must reach "
                              "every copy: " + "; ".join(f"{name}: {why}" for name, why in behind.items()))
    return repository
