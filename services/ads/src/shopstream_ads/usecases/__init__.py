"""Use cases of the ads service: one module per capability (issue 17's target shape)."""
