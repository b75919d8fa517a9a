"""Creator-score service: the creator marketplace's scores, search and live score updates."""
