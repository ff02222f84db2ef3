"""The integrations stay optional and use only the public API."""

import ast
import subprocess
import sys
from pathlib import Path

import asyncresolve

INTEGRATIONS = Path(asyncresolve.__file__).parent / "integrations"
PUBLIC = {"asyncresolve", "asyncresolve.backends", "asyncresolve.addrselect", "asyncresolve.policy",
          "asyncresolve.bulk"}


def test_integrations_import_only_the_public_api():
    for path in INTEGRATIONS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asyncresolve"):
                assert node.level == 0, (path.name, node.module)
                assert node.module in PUBLIC, (path.name, node.module)
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                raise AssertionError(f"{path.name} reaches into the package with '..{node.module}'")


BLOCKED = """
import sys
for name in ("aiohttp", "httpx", "httpcore", "scrapy", "twisted", "trustme"):
    sys.modules[name] = None  # as if not installed
import asyncresolve, asyncresolve.policy, asyncresolve.integrations, asyncresolve.integrations.happy_eyeballs
for module in ("aiohttp", "httpx", "scrapy"):
    try:
        __import__(f"asyncresolve.integrations.{module}")
    except ImportError as error:
        print(module, "needs its extra:", error.name)
import asyncio
from asyncresolve.demo import crawler_tour
asyncio.run(crawler_tour())
"""


def test_asyncresolve_imports_without_the_extras():
    done = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("needs its extra") == 3
    assert "the crawler job: skipped (pip install 'asyncresolve[aiohttp]')" in done.stdout
