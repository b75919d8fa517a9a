"""A bounded in-process cache of product views: GetProduct serves from memory, not the database.

Entries are dropped after any committed write to the product (this process writes all of them:
catalog is the only writer of its tables). Several replicas would each need to drop entries on
catalog.products.v1 events too; see docs/catalog.md.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from shopstream_catalog.domain.model import ProductView


class ProductCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, ProductView] = OrderedDict()
        # Bumped by every invalidation: a view loaded before a write must not be cached after it.
        self.epoch = 0

    def get(self, product_id: str) -> ProductView | None:
        view = self._entries.get(product_id)
        if view is not None:
            self._entries.move_to_end(product_id)
        return view

    def put(self, view: ProductView, loaded_at_epoch: int) -> None:
        if self._capacity == 0 or loaded_at_epoch != self.epoch:
            return
        self._entries[view.product_id] = view
        self._entries.move_to_end(view.product_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def invalidate(self, product_ids: Iterable[str]) -> None:
        self.epoch += 1
        for product_id in product_ids:
            self._entries.pop(product_id, None)
