"""Database plumbing: engines, migrations, the transactional outbox and the consumer inbox."""
