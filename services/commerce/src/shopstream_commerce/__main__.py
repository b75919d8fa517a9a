"""Entry point: `python -m shopstream_commerce`."""

from shopstream_commerce.api.policy import POLICY
from shopstream_commerce.settings import CommerceSettings
from shopstream_commerce.store.tables import MIGRATIONS
from shopstream_commerce.wiring import wire
from shopstream_platform.runtime import run_service
from shopstream_platform.settings import load_settings


def main() -> None:
    run_service(load_settings(CommerceSettings), wire, policy=POLICY, migrations=MIGRATIONS)


if __name__ == "__main__":
    main()
