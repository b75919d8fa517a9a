"""The `shopstream` command line: local stack, topics, dead letters, tokens."""
