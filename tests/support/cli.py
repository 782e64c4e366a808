"""Run the real `clinic` command as an operator would, against one test's topics and databases."""

from __future__ import annotations

import asyncio
import os
import sys


async def clinic(settings, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URL": settings.mongodb_url.get_secret_value(),
        "CLINIC_TOPIC_PREFIX": settings.topic_prefix,
        "CLINIC_DATABASE_PREFIX": settings.database_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.cli.main", *args,
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode, out.decode(), err.decode()
