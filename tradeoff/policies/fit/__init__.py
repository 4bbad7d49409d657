"""Fitting: cross-fitted candidates per family, the search, and the acceptance test."""
