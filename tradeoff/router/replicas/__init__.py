"""Several proxy processes on one store: what they share, how they talk, `--workers`."""
