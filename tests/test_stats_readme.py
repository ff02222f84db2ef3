"""The README's "Statistics" example runs as written and shows the figures it says."""

import json
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_statistics_example_runs(tmp_path):
    section = README.read_text().split("\n## Statistics\n", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert json.loads(lines[0]) == {"queries": 3, "cache_hits": 2, "hit_ratio": 2 / 3}
    assert re.fullmatch(r"p99 of the hosts file: [0-9.e-]+ s", lines[1])
    assert lines[2] == 'asyncresolve_queries_total{resolver="web"} 3.0'
