"""Fuzzing every response path: the committed corpus replayed, hypothesis-driven bytes and
mutations of the corpus, and a few seconds of atheris (libFuzzer) per target.

Targets are in ``tests/fuzz/targets.py``: the iterative transport + engine, and c-ares's
parser + our conversion. Each checks its own invariants (nothing escapes but the expected
errors; nothing out of bailiwick cached or returned).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import targets

FUZZ = Path(__file__).resolve().parent / "fuzz"
TARGETS: dict[str, Callable[[bytes], None]] = {
    "iterative": targets.iterative_response,
    "cares": targets.cares_response,
}
SECONDS = float(os.environ.get("ASYNCRESOLVE_FUZZ_SECONDS", "4"))


def corpus(target: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((FUZZ / "corpus" / target).iterdir())]


@pytest.mark.parametrize("target", list(TARGETS))
def test_corpus_replays_cleanly(target: str) -> None:
    seeds = corpus(target)
    assert len(seeds) >= 50
    for data in seeds:
        TARGETS[target](data)


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    data = bytearray(draw(st.sampled_from(corpus(target))))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "cut", "dup"]))
        if action == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[where] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[where:]
        else:
            data[where:where] = data[where:where + draw(st.integers(1, 16))]
    return bytes(data)


FUZZ_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("target", list(TARGETS))
def test_random_bytes(target: str) -> None:
    @FUZZ_SETTINGS
    @given(st.binary(min_size=0, max_size=600))
    def check(data: bytes) -> None:
        TARGETS[target](data)

    check()


@pytest.mark.parametrize("target", list(TARGETS))
def test_mutated_corpus(target: str) -> None:
    @FUZZ_SETTINGS
    @given(mutated(target))
    def check(data: bytes) -> None:
        TARGETS[target](data)

    check()


@pytest.mark.parametrize("target", list(TARGETS))
def test_atheris_for_a_few_seconds(target: str, tmp_path: Path) -> None:
    """libFuzzer-guided (atheris) for a bounded time; a crash fails with its input saved."""
    work = tmp_path / "corpus"
    shutil.copytree(FUZZ / "corpus" / target, work)
    result = subprocess.run(
        [sys.executable, str(FUZZ / f"fuzz_{target}.py"), f"-max_total_time={SECONDS:g}",
         "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(work)],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path,
    )
    tail = (result.stdout + result.stderr)[-3000:]
    assert result.returncode == 0, tail
    assert "Done" in tail or "DONE" in tail, tail
