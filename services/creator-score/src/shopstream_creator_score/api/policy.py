"""Who may call CreatorScoreService: any signed-in caller; it is read-only marketplace data."""

from shopstream_platform.grpc.auth import ROLES, AccessPolicy

ANY_ROLE = tuple(sorted(ROLES))

POLICY = AccessPolicy.of(
    {m: ANY_ROLE for m in ("GetCreator", "SearchCreators", "TopCreators", "WatchScores")}
)
