"""`python -m bench`: run the benchmarks, print the table, write bench/results/<timestamp>.json."""

import sys

from bench.run import main

sys.exit(main())
