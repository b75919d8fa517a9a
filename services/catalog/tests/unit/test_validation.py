import pytest

from shopstream_catalog.domain.model import Money, NewProduct, NewSku
from shopstream_catalog.domain.validation import (
    MAX_STOCK,
    validate_new_product,
    validate_stock_delta,
)
from shopstream_platform.errors import InvalidArgumentError


def product(**overrides: object) -> NewProduct:
    base: dict[str, object] = {
        "seller_id": "s1",
        "title": "Scarf",
        "description": "",
        "category_id": "fashion",
        "brand": "Acme",
        "attributes": {"material": "silk"},
        "skus": [NewSku("red", {}, Money(100, "GBP"), {"w1": 1})],
    }
    base.update(overrides)
    return NewProduct(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": " "}, "title"),
        ({"category_id": "weapons"}, "category_id"),
        ({"skus": []}, "skus"),
        ({"skus": [NewSku("a", {}, Money(0, "GBP"), {})]}, "skus[0].price.amount_minor"),
        ({"skus": [NewSku("a", {}, Money(10, "pounds"), {})]}, "skus[0].price.currency"),
        ({"skus": [NewSku("a", {}, Money(1, "GBP"), {"w1": -1})]}, "skus[0].stock[w1]"),
        (
            {"skus": [NewSku("a", {}, Money(1, "GBP"), {}), NewSku("a", {}, Money(1, "GBP"), {})]},
            "skus[1].sku_code",
        ),
        (
            {"skus": [NewSku("a", {}, Money(1, "GBP"), {}), NewSku("b", {}, Money(1, "EUR"), {})]},
            "skus",
        ),
    ],
)
def test_invalid_products_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        validate_new_product(product(**overrides))
    assert error.value.field == field


def test_valid_product_passes() -> None:
    validate_new_product(product())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"brand": "b" * 101}, "brand"),
        ({"idempotency_key": "k" * 129}, "idempotency_key"),
        ({"skus": [NewSku("a", {}, Money(10**12, "GBP"), {})]}, "skus[0].price.amount_minor"),
        (
            {"skus": [NewSku("a", {"colour": "r" * 101}, Money(1, "GBP"), {})]},
            "skus[0].variant_attributes[colour]",
        ),
        (
            {"skus": [NewSku("a", {f"k{i}": "v" for i in range(11)}, Money(1, "GBP"), {})]},
            "skus[0].variant_attributes",
        ),
        (
            {"skus": [NewSku("a", {}, Money(1, "GBP"), {f"w{i}": 1 for i in range(21)})]},
            "skus[0].stock",
        ),
        ({"skus": [NewSku("a", {}, Money(1, "GBP"), {"w1": 2**62})]}, "skus[0].stock[w1]"),
    ],
)
def test_every_field_that_reaches_an_event_is_bounded(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        validate_new_product(product(**overrides))
    assert error.value.field == field


@pytest.mark.parametrize("delta", [0, 2**63 - 1, -(2**63), MAX_STOCK + 1, -MAX_STOCK - 1])
def test_stock_deltas_are_bounded(delta: int) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        validate_stock_delta(delta)
    assert error.value.field == "delta"


def test_stock_deltas_within_bounds_pass() -> None:
    validate_stock_delta(MAX_STOCK)
    validate_stock_delta(-MAX_STOCK)
