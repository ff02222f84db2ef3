"""The offline demo, run as a user runs it: the installed command, in a subprocess."""

import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_offline_and_shows_every_backend():
    script = Path(sys.executable).with_name("asyncresolve")
    result = subprocess.run([str(script), "demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "source=hosts" in out
    assert "source=cares" in out
    assert "source=iterative" in out
    # real TTLs from the zone data, a CNAME chain, negative TTL from the SOA minimum
    assert re.search(r"www\.example\.test\.\s+60\s+IN\s+A\s+192\.0\.2\.10", out)
    assert re.search(r"alias\.example\.test\.\s+120\s+IN\s+CNAME\s+www\.example\.test\.", out)
    assert "NXDomain" in out
    assert "negative ttl=300" in out
    # the cache hit sent nothing; the burst of 500 made one upstream query
    assert "source=cares (cache)" in out
    assert "received 0 queries" in out
    assert "499 waiters shared one lookup; the lab received 1 query" in out
    # the referral path of the iterative backend
    assert "trace: [.] @127." in out
    assert "referral to test." in out
    assert "Traceback" not in result.stderr
