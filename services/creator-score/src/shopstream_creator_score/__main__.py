"""Entry point: `python -m shopstream_creator_score`."""

from shopstream_creator_score.api.policy import POLICY
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.wiring import wire
from shopstream_platform.runtime import run_service
from shopstream_platform.settings import load_settings


def main() -> None:
    run_service(load_settings(CreatorScoreSettings), wire, policy=POLICY)


if __name__ == "__main__":
    main()
