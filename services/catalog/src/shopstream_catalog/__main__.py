"""Entry point: `python -m shopstream_catalog`."""

from shopstream_catalog.api.policy import POLICY
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import MIGRATIONS
from shopstream_catalog.wiring import wire
from shopstream_platform.runtime import run_service
from shopstream_platform.settings import load_settings


def main() -> None:
    run_service(load_settings(CatalogSettings), wire, policy=POLICY, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
