"""The ways in: adapters to the canonical report, and the feed simulator for demo and load."""
