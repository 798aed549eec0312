"""Dispatch: the nearest place that can take a patient now, and announcing one (holding a place)."""
