"""What the creators' and the sellers' append-only ledgers share: a page's size, and a balance
per account in the one currency a ledger holder has today."""

from __future__ import annotations

from shopstream_platform.errors import InvalidArgumentError


def page_size(requested: int, default: int, most: int) -> int:
    if requested < 0:
        raise InvalidArgumentError("page.page_size", "must not be negative")
    return min(requested or default, most)


def per_account(sums: dict[tuple[int, str], int], holder_field: str) -> tuple[dict[int, int], str]:
    """Sums per (account, currency) → (sum per account, currency); several currencies would need
    a balance per currency in the API."""
    currencies = {currency for _, currency in sums}
    if len(currencies) > 1:
        raise InvalidArgumentError(
            holder_field, "balances in several currencies are not supported yet"
        )
    return {account: total for (account, _), total in sums.items()}, next(iter(currencies), "")
