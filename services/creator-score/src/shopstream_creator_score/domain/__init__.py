"""Creator-score domain: per-creator state, its updates, and the score formula — pure, no I/O."""
