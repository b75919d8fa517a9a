"""Catalog persistence: tables, migrations and queries (SQLite or PostgreSQL via SQLAlchemy)."""
