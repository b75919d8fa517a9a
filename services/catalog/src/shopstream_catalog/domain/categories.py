"""The category tree sellers list into, with the attributes each category requires."""

from __future__ import annotations

from shopstream_catalog.domain.model import Category

CATEGORIES: dict[str, Category] = {
    c.category_id: c
    for c in [
        Category("beauty", "Beauty & Personal Care", ("volume_ml",)),
        Category("fashion", "Fashion", ("material",)),
        Category("home", "Home & Kitchen", ("material",)),
        Category("electronics", "Electronics", ("model", "warranty_months")),
        Category("food", "Food & Drinks", ("expiry_days", "allergens")),
        Category("toys", "Toys & Games", ("min_age",)),
        Category("sports", "Sports & Outdoors", ()),
    ]
}
