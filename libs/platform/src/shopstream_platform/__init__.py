"""shopstream's platform library: the plumbing every service shares, written once."""
