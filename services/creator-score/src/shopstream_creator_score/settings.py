"""Creator-score settings: env prefix SHOPSTREAM_CREATOR_SCORE_."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopstream_platform.settings import CombinerSettings, ServiceSettings


class CreatorScoreSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHOPSTREAM_CREATOR_SCORE_", env_nested_delimiter="__"
    )

    service_name: str = "creator-score"
    database_url: str = "sqlite+aiosqlite:///.run/db/creator-score.db"
    # Faust: RocksDB tables by default, memory in tests; changelog topics either way.
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = Path(".run/faust")
    faust_app_id: str = "creator-score"
    # Publish a score change on creators.scores.v1 only when it moves at least this much.
    publish_step: float = Field(default=1.0, ge=0)
    # Half-life of GMV, views and activity in days: old sales fade.
    half_life_days: float = Field(default=30.0, gt=0)
    search_default_page_size: int = Field(default=20, ge=1)
    search_max_page_size: int = Field(default=100, ge=1)
    # Buffered score changes per WatchScores stream before a slow watcher is dropped.
    watch_queue_size: int = Field(default=1_000, ge=1)
    # Changed creator states are written at each offset commit, or sooner when more than this
    # many wait: it bounds their memory and the pause of a commit or a shutdown (Faust encodes and
    # sends each state, ~0.1 ms).
    max_dirty_creators: int = Field(default=10_000, ge=1)
    # End the worker when Faust's table recovery needs changelog records and gets none for this
    # long (stream/recovery_watch.py): its supervisor starts it again.
    recovery_stall_s: float = Field(default=120.0, gt=0)
    # The combiner process in front of the Faust worker (stream/combiner.py).
    combiner: CombinerSettings = CombinerSettings()
