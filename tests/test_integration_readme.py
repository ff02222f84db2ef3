"""The README's "Use it in a crawler" examples run as written and do what they say."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def crawler_examples():
    text = README.read_text()
    section = text.split("\n## Use it in a crawler\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


EXPECTED = [
    r"http://www\.crawl\.test:\d+/ 200",  # aiohttp
    r"http://www\.crawl\.test:\d+/ 200",  # httpx
    r"http://www\.crawl\.test:\d+/ 200 127\.0\.0\.1",  # Scrapy
    r"0x7f\.1 -> address 127\.0\.0\.1 refused by policy: loopback \| cause: AddressRefused",  # the guard
]


def test_there_is_one_example_per_integration_and_one_for_the_guard():
    assert len(crawler_examples()) == len(EXPECTED)


@pytest.mark.parametrize(("index", "expected"), list(enumerate(EXPECTED)))
def test_crawler_example_runs(index, expected, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(crawler_examples()[index])
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(expected, done.stdout), done.stdout
    if index == 3:
        assert "::ffff:169.254.169.254 None link-local (169.254.169.254 embedded)" in done.stdout
        assert "10.1.1.1 intranet.corp.example allowed" in done.stdout
        assert "93.184.216.34 None allowed" in done.stdout
        assert done.stdout.count(" -> address ") == 3
