"""The loop inside the proxy: shadow calls, feedback, live guarantee watches, scheduled refits."""
