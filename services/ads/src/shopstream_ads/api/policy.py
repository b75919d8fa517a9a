"""Who may call which AdsService method (ownership is checked in the use cases)."""

from shopstream_platform.grpc.auth import AccessPolicy

ADMIN = ("admin", "service")
ADVERTISER = ("seller", "advertiser", *ADMIN)

POLICY = AccessPolicy.of(
    {
        "CreateCampaign": ADVERTISER,
        "GetCampaign": ADVERTISER,
        "ListCampaigns": ADVERTISER,
        "PauseCampaign": ADVERTISER,
        "ResumeCampaign": ADVERTISER,
        "GetCampaignReport": ADVERTISER,
        # The app's edge (a platform service) runs auctions and records traffic.
        "SelectAds": ADMIN,
        "RecordImpression": ADMIN,
        "RecordClick": ADMIN,
    },
    public=["GetAttributionSettings"],
)
