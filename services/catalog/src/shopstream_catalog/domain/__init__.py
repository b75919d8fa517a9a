"""Catalog domain: pure rules and data shapes, no I/O."""
