"""JSON logs with trace ids, in which a citizen id number never appears whole."""

from __future__ import annotations

import logging
import re
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

# CCCD (12 digits) and the old CMND (9 digits): keep the last three digits only.
_ID_NUMBER = re.compile(r"(?<![\d.])(\d{6}|\d{9})(\d{3})(?![\d.])")


def mask_id_numbers(text: str) -> str:
    """Replace all but the last three digits of every 9- or 12-digit run."""
    return _ID_NUMBER.sub(lambda m: "*" * len(m.group(1)) + m.group(2), text)


class _MaskingFilter(logging.Filter):
    """Masks id numbers in the rendered message and adds trace ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_id_numbers(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_id_numbers(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.service = self.service
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
        return True


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Route every logger (uvicorn's too) to stdout through the masking filter."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_MaskingFilter(service))
    if json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(service)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel("WARNING")
