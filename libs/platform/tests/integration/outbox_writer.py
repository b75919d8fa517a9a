"""Subprocess for the kill test: commits an outbox row, says so, then waits to be killed -9."""

import asyncio
import sys

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import Outbox


async def main(url: str, topic: str) -> None:
    db = Database(url)
    outbox = Outbox(source="shopstream/killed-writer")
    async with db.transaction() as session:
        meta = await outbox.add(session, topic, "inst-9", heartbeat_pb2.Heartbeat(sequence=9))
    print(meta.id, flush=True)
    await asyncio.sleep(3600)  # no relay runs here: the publish never happens before the kill


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
