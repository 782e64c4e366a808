"""`python -m services.<name>`: one entry point for every service process."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.runtime.logs import configure
from shared.settings import Settings, explain, redact


def run_service(create_service: Callable[..., Any]) -> None:
    """Read settings, configure logging, serve until SIGINT/SIGTERM. Bad settings or a taken port end
    the process with one line on stderr and a non-zero status, not a traceback."""
    try:
        settings = Settings()
    except ValidationError as error:
        print(explain(error), file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level, settings.log_format, patient_key=settings.log_patient_key)
    service = create_service(settings)
    try:
        asyncio.run(service.run_forever())
    except OSError as error:
        logging.getLogger(f"clinic.{service.name}").error(redact(str(error)))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # a start-up failure that retrying cannot fix (bad URL, authentication, ...)
        message = redact(str(error))[:300]
        logging.getLogger(f"clinic.{service.name}").error(f"cannot start: {error.__class__.__name__}: {message}")
        sys.exit(1)
