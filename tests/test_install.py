"""Installing asyncresolve into someone else's project breaks nothing there.

A fresh virtual environment gets only asyncresolve (built from this checkout, as a user's pip
would) and pytest, without pytest-asyncio: the project's unrelated tests still pass with the
asyncresolve plugin loaded, and a test that asks for an async lab fixture fails with advice.
Tests never reach PyPI: pip installs offline from ``.wheelhouse/``, which ``tools/install.sh``
fills (``pip wheel``) while setting up; bounded in time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".wheelhouse"
PIP_TIMEOUT = 600

UNRELATED = """
def test_arithmetic():
    assert 1 + 1 == 2
"""

WANTS_A_LAB = """
async def test_lab(dns_lab):
    pass
"""


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    assert WHEELHOUSE.is_dir(), f"{WHEELHOUSE} is missing: run `bash tools/install.sh` (it fills it)"
    base = tmp_path_factory.mktemp("install")
    source = base / "asyncresolve-src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".wheelhouse", "__pycache__", "*.egg-info", "build", "dist", ".*_cache"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run([str(python), "-m", "pip", "install", "-v", "--no-index", "--find-links",
                             str(WHEELHOUSE), str(source), "pytest"],
                            capture_output=True, text=True, timeout=PIP_TIMEOUT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return python, result.stdout + result.stderr


def _pytest(python: Path, project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHON"))}
    return subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", str(project)], cwd=project,
                          capture_output=True, text=True, timeout=120, env=env)


def test_the_build_gives_no_deprecation_warning(fresh_venv: tuple[Path, str]) -> None:
    _, log = fresh_venv
    assert "SetuptoolsDeprecationWarning" not in log
    assert "License classifiers are deprecated" not in log
    assert "project.license` as a TOML table" not in log


def test_an_unrelated_project_keeps_passing(fresh_venv: tuple[Path, str], tmp_path: Path) -> None:
    python, _ = fresh_venv
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True,
                               text=True, timeout=120).stdout
    assert "asyncresolve==" in installed
    assert "pytest==" in installed
    assert "pytest-asyncio" not in installed
    assert "pytest_asyncio" not in installed
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    result = _pytest(python, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "asyncresolve" in result.stdout  # the plugin was loaded ("plugins: asyncresolve-...")
    assert "1 passed" in result.stdout


def test_an_async_fixture_without_pytest_asyncio_says_what_to_install(
        fresh_venv: tuple[Path, str], tmp_path: Path) -> None:
    python, _ = fresh_venv
    (tmp_path / "test_wants_a_lab.py").write_text(WANTS_A_LAB)
    result = _pytest(python, tmp_path)
    assert result.returncode != 0
    assert "needs pytest-asyncio" in result.stdout, result.stdout
    assert "asyncresolve[testing]" in result.stdout, result.stdout
