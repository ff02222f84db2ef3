"""Cache-hit throughput of ``await resolver.resolve()`` against a bare dict behind an ``await``.

Now scenario (2) of the benchmark harness: sequential and at concurrency 1,000, with
dnspython's cache in the same run. Extra arguments go to the harness. Run (root):
``python benchmarks/bench_cache_hits.py`` or ``python -m benchmarks --only cache``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main(["--only", "cache", "--stem", "cache-hits", *sys.argv[1:]]))
