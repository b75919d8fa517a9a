"""Input rules for sellers, products and stock; each failure names the offending field."""

from __future__ import annotations

import re

from shopstream_catalog.domain.categories import CATEGORIES
from shopstream_catalog.domain.model import Money, NewProduct
from shopstream_platform.errors import InvalidArgumentError

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# Bounds that keep every event a request causes far below the broker's record limit (1 MB) and
# every later sum far below int64: a product is at most MAX_SKUS x MAX_WAREHOUSES stock rows of
# MAX_STOCK units (5 * 10^10 in all), a price at most MAX_PRICE_MINOR. The encoded product is
# also checked against MAX_PRODUCT_EVENT_BYTES as a whole (app.py), since per-field limits
# multiplied out would allow more; text limits are in characters (up to 4 bytes each in UTF-8).
MAX_SKUS = 100
MAX_TITLE = 200
MAX_DESCRIPTION = 5_000
MAX_BRAND = 100
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 500
MAX_VARIANT_ATTRIBUTES = 10
MAX_VARIANT_VALUE = 100
MAX_WAREHOUSES = 20
MAX_STOCK = 10_000_000
MAX_PRICE_MINOR = 100_000_000_000  # a billion in major units
MAX_REASON = 500
MAX_IDEMPOTENCY_KEY = 128
MAX_SEARCH_TEXT = 200
MAX_PRODUCT_EVENT_BYTES = 256 * 1024


def require_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgumentError(field, "is required")
    if not _ID.match(value):
        raise InvalidArgumentError(field, "must be 1-64 characters of letters, digits and _.:-")
    return value


def validate_money(field: str, money: Money) -> None:
    if not _CURRENCY.match(money.currency):
        raise InvalidArgumentError(f"{field}.currency", "must be an ISO 4217 code like GBP")
    if not 0 < money.amount_minor <= MAX_PRICE_MINOR:
        raise InvalidArgumentError(f"{field}.amount_minor", f"must be 1..{MAX_PRICE_MINOR}")


def validate_seller(seller_id: str, display_name: str, country: str) -> None:
    require_id("seller_id", seller_id)
    if not display_name.strip():
        raise InvalidArgumentError("display_name", "is required")
    if len(display_name) > 200:
        raise InvalidArgumentError("display_name", "must be at most 200 characters")
    if not _COUNTRY.match(country):
        raise InvalidArgumentError("country", "must be an ISO 3166-1 alpha-2 code like GB")


def max_length(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidArgumentError(field, f"must be at most {limit} characters")
    return value


def validate_text(title: str | None, description: str | None, brand: str | None = None) -> None:
    if title is not None:
        if not title.strip():
            raise InvalidArgumentError("title", "is required")
        max_length("title", title, MAX_TITLE)
    if description is not None:
        max_length("description", description, MAX_DESCRIPTION)
    if brand is not None:
        max_length("brand", brand, MAX_BRAND)


def validate_attributes(
    field: str,
    attributes: dict[str, str],
    *,
    max_count: int = MAX_ATTRIBUTES,
    max_value: int = MAX_ATTRIBUTE_VALUE,
) -> None:
    if len(attributes) > max_count:
        raise InvalidArgumentError(field, f"at most {max_count} attributes")
    for key, value in attributes.items():
        if not key.strip() or len(key) > MAX_ATTRIBUTE_KEY or len(value) > max_value:
            # The key is cut in the field name: it may be the oversized part.
            raise InvalidArgumentError(
                f"{field}[{key[:MAX_ATTRIBUTE_KEY]}]",
                f"keys 1-{MAX_ATTRIBUTE_KEY} and values up to {max_value} characters",
            )


def validate_stock_delta(delta: int) -> None:
    if delta == 0:
        raise InvalidArgumentError("delta", "must not be zero")
    if not -MAX_STOCK <= delta <= MAX_STOCK:
        raise InvalidArgumentError("delta", f"must be -{MAX_STOCK}..{MAX_STOCK}")


def validate_new_product(product: NewProduct) -> None:
    require_id("seller_id", product.seller_id)
    validate_text(product.title, product.description, product.brand)
    max_length("idempotency_key", product.idempotency_key, MAX_IDEMPOTENCY_KEY)
    if product.category_id not in CATEGORIES:
        raise InvalidArgumentError("category_id", f"unknown category {product.category_id!r}")
    validate_attributes("attributes", product.attributes)
    if not product.skus:
        raise InvalidArgumentError("skus", "at least one SKU is required")
    if len(product.skus) > MAX_SKUS:
        raise InvalidArgumentError("skus", f"at most {MAX_SKUS} SKUs")
    codes: set[str] = set()
    currencies: set[str] = set()
    for i, sku in enumerate(product.skus):
        field = f"skus[{i}]"
        require_id(f"{field}.sku_code", sku.sku_code)
        if sku.sku_code in codes:
            raise InvalidArgumentError(f"{field}.sku_code", f"duplicate SKU code {sku.sku_code!r}")
        codes.add(sku.sku_code)
        validate_money(f"{field}.price", sku.price)
        currencies.add(sku.price.currency)
        validate_attributes(
            f"{field}.variant_attributes",
            sku.variant_attributes,
            max_count=MAX_VARIANT_ATTRIBUTES,
            max_value=MAX_VARIANT_VALUE,
        )
        if len(sku.stock) > MAX_WAREHOUSES:
            raise InvalidArgumentError(f"{field}.stock", f"at most {MAX_WAREHOUSES} warehouses")
        for warehouse, quantity in sku.stock.items():
            require_id(f"{field}.stock.warehouse_id", warehouse)
            if not 0 <= quantity <= MAX_STOCK:
                raise InvalidArgumentError(f"{field}.stock[{warehouse}]", f"must be 0..{MAX_STOCK}")
    if len(currencies) > 1:
        raise InvalidArgumentError("skus", "all SKUs of a product must share one currency")
