"""The gRPC API: shopstream.commerce.v1.CommerceService."""
