"""Entry point: `python -m shopstream_ads`."""

from shopstream_ads.api.policy import POLICY
from shopstream_ads.settings import AdsSettings
from shopstream_ads.store.tables import MIGRATIONS
from shopstream_ads.wiring import wire
from shopstream_platform.runtime import run_service
from shopstream_platform.settings import load_settings


def main() -> None:
    run_service(load_settings(AdsSettings), wire, policy=POLICY, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
