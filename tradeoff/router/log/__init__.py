"""The request log: every proxied request, spooled to disk, then written to the store once."""
