"""Carriers: the interface commerce ships packages through, and the deterministic sandbox."""
