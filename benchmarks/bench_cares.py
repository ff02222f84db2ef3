"""c-ares throughput: the full ``Resolver`` against raw pycares, ``CaresBackend`` alone and aiodns.

Now scenario (1) of the benchmark harness, restricted to the c-ares contenders: cold
lookups of distinct names against the harness's NSD, rounds interleaved, medians and
spread. Extra arguments go to the harness (``--levels``, ``--names``, ``--rounds``,
``--loops``...). Run (root): ``python benchmarks/bench_cares.py`` or
``python -m benchmarks --only cold --contenders ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import main

CONTENDERS = ["Resolver+cares", "CaresBackend alone", "aiodns query_dns"]

if __name__ == "__main__":
    sys.exit(main(["--only", "cold", "--contenders", *CONTENDERS, "--levels", "500", "--stem", "cares",
                   *sys.argv[1:]]))
