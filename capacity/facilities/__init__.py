"""Facilities beyond the shipped hospital list: GP posts, care homes, rehab and mental-health places."""
