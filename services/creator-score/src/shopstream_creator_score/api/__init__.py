"""The gRPC API: shopstream.creators.v1.CreatorScoreService."""
