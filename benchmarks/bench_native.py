"""Native stub throughput: the full ``Resolver`` + ``NativeBackend`` against raw pycares, same NSD, same run.

Now scenario (1) of the benchmark harness (and its miss-path split, scenario 7), restricted to
the native and c-ares contenders: cold lookups of 20,000 distinct names at concurrency 500
against the harness's NSD, on asyncio and uvloop, rounds interleaved, medians and spread,
with the client's CPU time per name. The target (issue 12): ``Resolver+native`` at least
1.5 x raw pycares. Extra arguments go to the harness (``--levels``, ``--names``, ``--rounds``,
``--loops``...). Run (root): ``python benchmarks/bench_native.py`` or
``python -m benchmarks --only cold --contenders "Resolver+native" "NativeBackend alone" ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import main

CONTENDERS = ["Resolver+native", "NativeBackend alone", "Resolver+cares", "CaresBackend alone"]

if __name__ == "__main__":
    sys.exit(main(["--only", "cold", "--contenders", *CONTENDERS, "--levels", "500", "--stem", "native",
                   *sys.argv[1:]]))
