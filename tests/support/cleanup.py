"""Remove what one test (or benchmark) created: its databases and its topics, by their prefixes."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from shared.runtime.kafka_client import Kafka
from shared.settings import Settings


async def drop_deployment(settings: Settings, topics: bool = True) -> None:
    client = AsyncMongoClient(settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=3000)
    try:
        for name in await client.list_database_names():
            if name.startswith(settings.database_prefix):
                await client.drop_database(name)
    finally:
        await client.close()
    if not topics or not settings.topic_prefix:
        return
    admin = Kafka.of(settings).admin()
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()
