"""`python -m services.<name>`: one entry point for every service process."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.runtime.logs import configure
from shared.settings import Settings


def run_service(create_service: Callable[..., Any]) -> None:
    """Read settings, configure logging, serve until SIGINT/SIGTERM. Bad settings or a taken port end
    the process with one line on stderr and a non-zero status, not a traceback."""
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        print(f"invalid setting {_env_name(str(first['loc'][0]))}: {first['msg']}", file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level, settings.log_format)
    service = create_service(settings)
    try:
        asyncio.run(service.run_forever())
    except OSError as error:
        logging.getLogger(f"clinic.{service.name}").error(str(error))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # a start-up failure that retrying cannot fix (bad URL, authentication, ...)
        message = re.sub(r"://[^@/\s]+@", "://***@", str(error))[:300]
        logging.getLogger(f"clinic.{service.name}").error(f"cannot start: {error.__class__.__name__}: {message}")
        sys.exit(1)


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"{Settings.model_config.get('env_prefix', '')}{field}".upper()
