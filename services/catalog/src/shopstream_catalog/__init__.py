"""Catalog service: sellers, products, stock reservation and listing quality control."""
