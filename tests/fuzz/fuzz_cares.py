"""atheris entry point: `python tests/fuzz/fuzz_cares.py [libFuzzer args] [corpus dirs]`.

Runs ``targets.cares_response`` on libFuzzer-mutated bytes, starting from
``tests/fuzz/corpus/cares``; ``tests/test_fuzz.py`` runs it for a few seconds in CI.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports():
    import targets


def main() -> None:
    atheris.Setup(sys.argv, targets.cares_response)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
