"""commerce.fulfilment.v1 → the fulfilment use cases (usecases/fulfilment.py).

Routing only: a package delivered or lost feeds the seller's delivery quality; a returned
package inspected restocks what passed. Cached products the transaction touched are dropped
after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import order_events_pb2
from shopstream_catalog.usecases.fulfilment import Fulfilment
from shopstream_platform.db.inbox import SqlInbox
from shopstream_platform.kafka.events import Event, Handler, InvalidEventError, Outcome

COMMERCE_FULFILMENT_TOPIC = "commerce.fulfilment.v1"

Route = Callable[[Event[Message], AsyncSession], Awaitable[set[str]]]


class FulfilmentEventHandlers:
    def __init__(self, fulfilment: Fulfilment, invalidate: Callable[[set[str]], None]) -> None:
        self._fulfilment = fulfilment
        self._invalidate = invalidate

    def routes(self, inbox: SqlInbox) -> dict[type[Message], Handler]:
        f = self._fulfilment

        async def package_ended(event: Event[Message], session: AsyncSession) -> set[str]:
            package = getattr(event.message, "package", None)
            if package is None:
                raise InvalidEventError("package is missing")
            return await f.package_ended(session, package)

        async def inspected(event: Event[Message], session: AsyncSession) -> set[str]:
            if not isinstance(event.message, order_events_pb2.ReturnInspected):
                raise InvalidEventError(f"unexpected {type(event.message).__name__}")
            return await f.return_inspected(session, event.message)

        table: dict[type[Message], Route] = {
            order_events_pb2.PackageDelivered: package_ended,
            order_events_pb2.PackageLost: package_ended,
            order_events_pb2.ReturnInspected: inspected,
        }
        return {t: self._with_cache(inbox, h) for t, h in table.items()}

    def _with_cache(self, inbox: SqlInbox, route: Route) -> Handler:
        touched: set[str] = set()

        async def run(event: Event[Message], session: AsyncSession) -> None:
            touched.update(await route(event, session))

        inner = inbox.handler(run)

        async def handle(event: Event[Message]) -> Outcome | None:
            touched.clear()
            try:
                return await inner(event)
            finally:
                self._invalidate(touched)

        return handle
