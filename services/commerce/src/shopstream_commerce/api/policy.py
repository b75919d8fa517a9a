"""Who may call which CommerceService method (ownership is checked in the use cases)."""

from shopstream_platform.grpc.auth import AccessPolicy

ADMIN = ("admin", "service")
BUYER = ("buyer", *ADMIN)
SELLER = ("seller", *ADMIN)
CREATOR = ("creator", *ADMIN)

POLICY = AccessPolicy.of(
    {
        "PlaceOrder": BUYER,
        "GetOrder": ("buyer", "seller", *ADMIN),
        "ListOrders": ("buyer", "seller", *ADMIN),
        "PayOrder": BUYER,
        "CancelOrder": BUYER,
        "ShipOrder": SELLER,
        "ConfirmDelivery": BUYER,
        "ShipPackage": SELLER,
        "ListPackages": ("buyer", "seller", *ADMIN),
        "RequestRefund": BUYER,
        "ApproveRefund": SELLER,
        "RejectRefund": SELLER,
        "ShipReturn": BUYER,
        "ReceiveReturn": SELLER,
        "EscalateRefund": BUYER,
        "ScheduleLiveSession": CREATOR,
        "StartLiveSession": CREATOR,
        "PinProduct": CREATOR,
        "EndLiveSession": CREATOR,
        "SetCommissionRate": SELLER,
        "ApproveCreator": SELLER,
        "GetCreatorEarnings": CREATOR,
        "StartFlashSale": SELLER,
        "GetOrderSettlement": SELLER,
        "GetSellerBalance": SELLER,
        "CheckLeaks": ADMIN,
    },
    public=["GetLiveSession", "GetFlashSale"],
)
