"""Use cases added after issue 17: one module per aggregate or capability."""
