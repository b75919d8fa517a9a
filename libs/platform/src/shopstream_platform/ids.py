"""Opaque, time-ordered ids: newer ids sort after older ones, which keyset pagination relies on."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    # 48-bit millisecond time + 64 random bits, hex: sortable by creation, unguessable.
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"
