"""Builds creator-score from the platform runtime: use cases, Faust streams, copies, gRPC API."""

from __future__ import annotations

from dataclasses import dataclass

from shopstream.creators.v1 import creator_score_service_pb2, creator_score_service_pb2_grpc
from shopstream_creator_score.api.servicer import CreatorScoreServicer
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.agents import ScoreStreams
from shopstream_creator_score.stream.copies import CreatorCopies
from shopstream_creator_score.stream.topics import INPUT_TOPICS, SCORES_TOPIC
from shopstream_creator_score.usecases.ad_sales import AdSalesPrivacy, AdSalesReleaser
from shopstream_creator_score.usecases.creators import Creators
from shopstream_creator_score.usecases.marketplace import Marketplace
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_creator_score.usecases.watching import Watching
from shopstream_platform.child_process import free_local_port
from shopstream_platform.faust_batch import StreamOutputs
from shopstream_platform.runtime import Runtime


@dataclass
class CreatorScore:
    board: ScoreBoard
    streams: ScoreStreams
    copies: CreatorCopies
    metrics: CreatorScoreMetrics


def wire(runtime: Runtime) -> CreatorScore:
    settings = runtime.settings
    assert isinstance(settings, CreatorScoreSettings)
    metrics = CreatorScoreMetrics(runtime.metrics.registry)
    # Everything the stream agents publish (re-keyed inputs, score changes) is acknowledged
    # once per batch, before the batch's table writes (shopstream_platform.faust_batch).
    outputs = StreamOutputs(runtime.producer)
    board = ScoreBoard(outputs, metrics, settings.publish_step, settings.watch_queue_size)
    streams = ScoreStreams(settings, outputs, runtime.dead_letters, board, metrics, runtime.metrics)
    # The creators other processes of this deployment own (several processes split the table).
    copies = CreatorCopies(
        kafka=settings.kafka,
        app=streams.app,
        table=streams.creators.table,
        owned=streams.owned_partitions,
        assigned=streams.assigned,
        board=board,
        metrics=metrics,
        half_life_s=settings.half_life_days * 86_400.0,
    )
    # Ad-credited sales reach callers only thresholded and noised (usecases/ad_sales.py).
    ad_sales = AdSalesReleaser(
        settings.auth.jwt_secret.get_secret_value().encode(), AdSalesPrivacy()
    )
    creators = Creators(
        board, streams.state_of, copies.get, ad_sales, settings.half_life_days * 86_400.0
    )
    marketplace = Marketplace(
        board, settings.search_default_page_size, settings.search_max_page_size
    )
    runtime.declare_topics([*INPUT_TOPICS, SCORES_TOPIC])
    runtime.add_grpc_service(
        creator_score_service_pb2.DESCRIPTOR.services_by_name["CreatorScoreService"].full_name,
        creator_score_service_pb2_grpc.add_CreatorScoreServiceServicer_to_server,
        CreatorScoreServicer(creators, marketplace, Watching(board, ad_sales)),
    )
    runtime.add_task("faust", streams.run)
    runtime.add_task("copies", copies.run)
    runtime.add_task("recovery-watch", streams.watch_recovery)
    if settings.combiner.mode == "process":
        # Its metrics reach Prometheus through the service's own /metrics (one target).
        settings.combiner.metrics_port = settings.combiner.metrics_port or free_local_port()
        runtime.add_child_process(
            "combiner",
            "shopstream_creator_score.stream.combiner",
            restart_backoff_s=settings.combiner.restart_backoff_s,
            metrics_port=settings.combiner.metrics_port,
        )
    runtime.add_readiness_gate(streams.recovered)
    runtime.add_readiness_gate(copies.caught_up)
    return CreatorScore(board, streams, copies, metrics)
