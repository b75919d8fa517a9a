"""The gRPC API: shopstream.catalog.v1.CatalogService."""
