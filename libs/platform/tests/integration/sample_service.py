"""A minimal service built on the platform runtime, run as a real process by the lifecycle test.

It has what every service has — settings, migrations, a deduplicating consumer, health, metrics —
and no domain: it counts the heartbeats it sees.
"""

from google.protobuf.message import Message
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.db.migrations import create_tables
from shopstream_platform.kafka.events import Event
from shopstream_platform.runtime import HEARTBEAT_TOPIC, Runtime, run_service
from shopstream_platform.settings import ServiceSettings, load_settings

metadata = MetaData()
seen = Table("heartbeats_seen", metadata, Column("event_id", String(64), primary_key=True))


class SampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_SAMPLE_", env_nested_delimiter="__")
    service_name: str = "sample"


async def on_heartbeat(event: Event[Message], session: AsyncSession) -> None:
    await session.execute(seen.insert().values(event_id=event.meta.id))


def wire(runtime: Runtime) -> None:
    runtime.add_consumer(
        "heartbeats",
        [HEARTBEAT_TOPIC],
        runtime.deduplicated("heartbeats", {heartbeat_pb2.Heartbeat: on_heartbeat}),
    )


if __name__ == "__main__":
    run_service(
        load_settings(SampleSettings),
        wire,
        migrations=[create_tables(1, "heartbeats_seen", metadata)],
    )
