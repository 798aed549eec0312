"""The regional board: every facility's live figures with their age."""
