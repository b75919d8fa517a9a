"""Bounds of commerce's request fields: every string a request can put into a row or an event has
a maximum length, so no order, refund or live event can grow past the broker's record limit
(1 MB by default; an order of 50 lines at these bounds stays under 64 KB) or a column's width.
"""

from __future__ import annotations

from shopstream_platform.errors import InvalidArgumentError

ID = 64  # buyer, seller, creator, order, SKU, product, line, refund, live session, video ids
AD_CLICK_ID = 128
KEY = 128  # idempotency keys
TOKEN = 128  # card tokens
TRACKING = 128
REGION = 32  # a buyer's delivery region
REASON = 500  # cancel and refund reasons
TITLE = 200
PINNED = 50  # products pinned when a live session starts


def bounded(field: str, value: str, limit: int) -> str:
    """`value` unchanged, or INVALID_ARGUMENT naming the field when it is longer than `limit`."""
    if len(value) > limit:
        raise InvalidArgumentError(field, f"at most {limit} characters (got {len(value)})")
    return value
