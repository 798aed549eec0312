"""The Redis seam: every key and stream field (`keys`), every script (`scripts`, `lua/`), the
one decoder of what Redis holds (`entries`), and the connections (`connection`). Nothing
outside this package names a Redis key or field, or parses a stream entry."""
