"""`python -m bench.serve ours|bare PORT`: one uvicorn worker with the production server options.

Both apps go through `capacity.cli.server_options`, so the baseline can never drift from
what `capacity serve` runs (uvloop, httptools, log level, one worker).
"""

from __future__ import annotations

import sys

import uvicorn

from capacity.cli import server_options
from capacity.config import Settings

TARGETS = {"ours": "capacity.app:create_app", "bare": "bench.bare_http:create_app"}


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    options = server_options(Settings(), host="127.0.0.1", port=port, workers=1)
    uvicorn.run(TARGETS[kind], factory=True, **options)


if __name__ == "__main__":
    main()
