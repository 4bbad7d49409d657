"""Replay on recorded outcomes: routes, metrics with confidence intervals, reports."""
