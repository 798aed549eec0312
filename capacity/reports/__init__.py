"""Reports: what a facility sends, validated at the edge and applied atomically."""
