"""Fail points for fault tests: ``MOTCUA_FAILPOINT=name:count`` makes the process die at that point.

Without the variable every call is a no-op. Tests use it to kill a service at an
exact place (for example after a database commit and before the Kafka offset
commit) instead of hoping a SIGKILL lands there.
"""

from __future__ import annotations

import logging
import os

_spec = os.environ.get("MOTCUA_FAILPOINT", "")
_name, _, _count = _spec.partition(":")
_remaining = int(_count or 1) if _name else 0
log = logging.getLogger("motcua.faults")


def failpoint(name: str) -> None:
    """Die with exit code 137 the Nth time this point is reached, when armed."""
    global _remaining
    if not _name or name != _name:
        return
    _remaining -= 1
    if _remaining <= 0:
        log.warning("failpoint %s reached: exiting", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(137)
