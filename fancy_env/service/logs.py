"""Link codes never reach a log of the service process."""

from __future__ import annotations

import logging
from typing import Any

from ..sharing.links import redact_codes


def install_log_redaction() -> None:
    """Every log record of this process has link codes redacted, whoever logs it: our request
    log, tornado's warnings (`403 GET …/l/<code>`) and JupyterHub's auth helpers."""
    inner = logging.getLogRecordFactory()
    if getattr(inner, "fancy_env_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logged as it is
            return record
        clean = redact_codes(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    factory.fancy_env_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
