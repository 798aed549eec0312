"""Mass-casualty incidents (issue 22): spread the casualties over the hospitals that can take them.

`rules` states the casualty-distribution rules with their sources; `planner` turns a snapshot of the
receiving hospitals and the casualty counts into a proposed plan, purely (no I/O)."""
