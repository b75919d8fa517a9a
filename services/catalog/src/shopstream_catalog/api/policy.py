"""Who may call which CatalogService method (ownership is checked in the use cases)."""

from shopstream_platform.grpc.auth import AccessPolicy

SELLER_OR_ADMIN = ("seller", "admin", "service")

POLICY = AccessPolicy.of(
    {
        "RegisterSeller": SELLER_OR_ADMIN,
        "CreateProduct": SELLER_OR_ADMIN,
        "UpdateProduct": SELLER_OR_ADMIN,
        "AdjustStock": SELLER_OR_ADMIN,
        "GetSellerQuality": SELLER_OR_ADMIN,
        "ReviewListing": ("admin",),
        "RegisterWarehouse": SELLER_OR_ADMIN,
        "EnrolSku": SELLER_OR_ADMIN,
        "AnnounceInbound": SELLER_OR_ADMIN,
        # The platform's warehouse staff count shipments in.
        "ReceiveInbound": ("admin", "service"),
        "GetInbound": SELLER_OR_ADMIN,
        "ListInbound": SELLER_OR_ADMIN,
    },
    public=[
        "GetSeller",
        "ListCategories",
        "GetProduct",
        "BatchGetProducts",
        "SearchProducts",
        "ListWarehouses",
    ],
)
