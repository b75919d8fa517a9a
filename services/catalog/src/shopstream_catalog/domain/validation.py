"""Input rules for sellers, products and stock; each failure names the offending field."""

from __future__ import annotations

import re

from shopstream_catalog.domain.categories import CATEGORIES
from shopstream_catalog.domain.model import Money, NewProduct
from shopstream_platform.errors import InvalidArgumentError

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_SKUS = 100
MAX_TITLE = 200
MAX_DESCRIPTION = 5_000
MAX_ATTRIBUTES = 50
MAX_STOCK = 10_000_000


def require_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgumentError(field, "is required")
    if not _ID.match(value):
        raise InvalidArgumentError(field, "must be 1-64 characters of letters, digits and _.:-")
    return value


def validate_money(field: str, money: Money) -> None:
    if not _CURRENCY.match(money.currency):
        raise InvalidArgumentError(f"{field}.currency", "must be an ISO 4217 code like GBP")
    if money.amount_minor <= 0:
        raise InvalidArgumentError(f"{field}.amount_minor", "must be positive")


def validate_seller(seller_id: str, display_name: str, country: str) -> None:
    require_id("seller_id", seller_id)
    if not display_name.strip():
        raise InvalidArgumentError("display_name", "is required")
    if len(display_name) > 200:
        raise InvalidArgumentError("display_name", "must be at most 200 characters")
    if not _COUNTRY.match(country):
        raise InvalidArgumentError("country", "must be an ISO 3166-1 alpha-2 code like GB")


def validate_text(title: str | None, description: str | None) -> None:
    if title is not None:
        if not title.strip():
            raise InvalidArgumentError("title", "is required")
        if len(title) > MAX_TITLE:
            raise InvalidArgumentError("title", f"must be at most {MAX_TITLE} characters")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidArgumentError("description", f"must be at most {MAX_DESCRIPTION} characters")


def validate_attributes(field: str, attributes: dict[str, str]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidArgumentError(field, f"at most {MAX_ATTRIBUTES} attributes")
    for key, value in attributes.items():
        if not key.strip() or len(key) > 64 or len(value) > 500:
            raise InvalidArgumentError(
                f"{field}[{key}]", "keys 1-64 and values up to 500 characters"
            )


def validate_new_product(product: NewProduct) -> None:
    require_id("seller_id", product.seller_id)
    validate_text(product.title, product.description)
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
        validate_attributes(f"{field}.variant_attributes", sku.variant_attributes)
        for warehouse, quantity in sku.stock.items():
            require_id(f"{field}.stock.warehouse_id", warehouse)
            if not 0 <= quantity <= MAX_STOCK:
                raise InvalidArgumentError(f"{field}.stock[{warehouse}]", f"must be 0..{MAX_STOCK}")
    if len(currencies) > 1:
        raise InvalidArgumentError("skus", "all SKUs of a product must share one currency")
