"""Who may do what: the roles every service's tokens carry, and the sets of them the services share. Pure."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who may do what: officials, auditors and the machine accounts of other systems."""

    CLERK = "clerk"
    SPECIALIST = "specialist"
    LEADER = "leader"
    ADMIN = "admin"
    AUDITOR = "auditor"
    PORTAL = "portal"
    BANK = "bank"
    SERVICE = "service"


# People who read dossiers: the one-stop's officials, the admin and the auditor (unit scoping still applies).
OFFICIALS: frozenset[Role] = frozenset({Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR})
# People who work on a dossier: receive it, process it, decide and sign it.
CASE_WORKERS: frozenset[Role] = frozenset({Role.CLERK, Role.SPECIALIST, Role.LEADER})
