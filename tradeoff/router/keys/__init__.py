"""Client keys of the proxy: authentication, per-key limits and their spend."""
