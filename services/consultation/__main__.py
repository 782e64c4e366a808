"""`python -m services.consultation`: the consultation service as a process."""

from __future__ import annotations

import asyncio

from services.consultation.app import create_service
from shared.runtime.logs import configure
from shared.settings import Settings


def main() -> None:
    settings = Settings()
    configure(settings.log_level, settings.log_format)
    asyncio.run(create_service(settings).run_forever())


if __name__ == "__main__":
    main()
