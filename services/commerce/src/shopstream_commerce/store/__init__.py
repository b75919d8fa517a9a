"""Commerce persistence: tables, migrations and queries."""
