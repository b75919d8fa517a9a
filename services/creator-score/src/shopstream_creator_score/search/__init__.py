"""Creator search: the in-memory score index behind SearchCreators and TopCreators."""

from shopstream_creator_score.search.index import CreatorSummary, ScoreIndex, SortKey

__all__ = ["CreatorSummary", "ScoreIndex", "SortKey"]
