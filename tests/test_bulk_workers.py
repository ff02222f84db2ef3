"""``asyncresolve bulk --workers N`` end to end, as subprocesses against a lab running in a thread."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from asyncresolve.bulk.resume import completed_pairs
from asyncresolve.testing import DNSLab

N = 3000
ZONE = "\n".join([
    "@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300", "@ 3600 IN NS ns1", "ns1 3600 IN A 127.0.0.1",
    "mx 300 IN MX 10 mail", "mail 300 IN A 192.0.2.25", "*.wild 60 IN A 192.0.2.99", "real.wild 60 IN A 192.0.2.1",
    *(f"h{i} 300 IN A 198.18.{i >> 8}.{i & 255}" for i in range(N)),
]) + "\n"
TEXT_HEADER = re.compile(r";; (\S+) (\S+) (.*?) \(\d+ records, ")
SCRIPT = str(Path(sys.executable).with_name("asyncresolve"))
MIXED = [
    "# a comment", "", "   h1.example.test   ", "H1.EXAMPLE.TEST.", "https://user:pw@h3.example.test:8443/a?b=c",
    "http://[::1]/x", "bad..name", "exa mple.test", "nope.example.test", "mx.example.test", "mail.example.test",
    *(f"h{i}.example.test" for i in range(200)), *(f"missing{i}.example.test" for i in range(50)),
    *(f"h{i}.example.test" for i in range(0, 200, 7)), "bad..name",
]


#: Kills at random points before a resumed run is let finish (on a loaded machine a run
#: killed every second or two may never get through the whole input).
MAX_KILLS = 8


@pytest.fixture(scope="module")
def lab():
    with DNSLab({"example.test.": ZONE}) as running:
        yield running


@pytest.fixture
def server(lab) -> str:
    ip, port = lab.stub_server
    return f"{ip}:{port}"


def bulk(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, "bulk", *args], capture_output=True, text=True, timeout=timeout)


def write_names(path: Path, names: list[str]) -> Path:
    path.write_text("\n".join(names) + "\n")
    return path


def triples(text: str, fmt: str) -> list[tuple[str, str, str]]:
    """(name, type, status) of every record of an output."""
    if fmt == "jsonl":
        return [(r["name"], r["type"], r["status"]) for r in map(json.loads, text.splitlines())]
    if fmt == "csv":
        return [(row["name"], row["type"], row["status"]) for row in csv.DictReader(io.StringIO(text))]
    out = []
    for line in text.splitlines():
        if line.startswith(";; "):
            match = TEXT_HEADER.match(line)
            assert match is not None, line
            status, rdtype, name = match.groups()
            out.append((name, rdtype, status))
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "text"])
def test_any_worker_count_gives_the_same_results(tmp_path, server, fmt):
    names = write_names(tmp_path / "names.txt", MIXED)
    outputs = {}
    for workers in (1, 2, 3):
        result = bulk(str(names), "--nameserver", server, "-t", "A,MX", "--format", fmt, "--workers", str(workers))
        assert result.returncode == 0, result.stderr
        outputs[workers] = Counter(triples(result.stdout, fmt))
        if fmt == "csv":
            assert result.stdout.startswith("name,type,status,")
            assert result.stdout.count("name,type,status,") == 1
    assert outputs[2] == outputs[1]
    assert outputs[3] == outputs[1]
    statuses = Counter(status for _, _, status in outputs[1].elements())
    assert statuses["NOERROR"]
    assert statuses["NXDOMAIN"]
    assert statuses["NODATA"]
    assert statuses["INVALID"]
    # the duplicates are reported once per line, as a plain run does
    assert outputs[1][("h1.example.test.", "A", "NOERROR")] == 3
    assert outputs[1][("h7.example.test.", "A", "NOERROR")] == 2


def a_queries(lab, name: str) -> int:
    return sum(1 for q in lab.queries if q.type == "A" and q.name.lower() == name + ".")


def test_the_repeats_of_a_name_go_to_one_worker(tmp_path, lab, server):
    # What one lookup costs at the lab (the stub may ask an authority behind it).
    lab.queries.clear()
    one = bulk(str(write_names(tmp_path / "one.txt", ["h2000.example.test"])), "--nameserver", server)
    assert one.returncode == 0, one.stderr
    per_lookup = a_queries(lab, "h2000.example.test")
    assert per_lookup >= 1
    repeated = [f"h{i}.example.test" for i in range(1000, 1040)]
    lines = [f"h{i}.example.test" for i in range(300)]
    rng = random.Random(5)
    for copy in range(5):  # five copies of each, spread through the input, in either case
        for name in repeated:
            lines.insert(rng.randrange(len(lines) + 1), name.upper() if copy % 2 else name)
    names = write_names(tmp_path / "names.txt", lines)
    lab.queries.clear()
    result = bulk(str(names), "--nameserver", server, "--workers", "3", "-c", "30")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == len(lines)
    asked = {name: a_queries(lab, name) for name in repeated}
    assert asked == dict.fromkeys(repeated, per_lookup)


def expected_pairs(types: tuple[str, ...] = ("A",)) -> set[tuple[str, str]]:
    return {(f"h{i}.example.test.", t) for i in range(N) for t in types}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "text"])
@pytest.mark.timeout(400)
def test_resume_with_workers_after_sigkill_at_random_points(tmp_path, server, fmt):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    out = tmp_path / f"out.{fmt}"
    rng = random.Random(fmt)
    command = [SCRIPT, "bulk", str(names), "--nameserver", server, "-t", "A,AAAA", "-o", str(out),
               "--format", fmt, "--rate", "600", "-c", "50", "--resume", "--workers", "2"]
    kills = 0
    for _ in range(MAX_KILLS + 1):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            process.wait(timeout=rng.uniform(0.8, 2.5) if kills < MAX_KILLS else 120)
        except subprocess.TimeoutExpired:
            process.kill()  # the parent only: its workers see their pipes close and go
            process.wait()
            kills += 1
            continue
        assert process.returncode == 0, process.stderr.read()  # type: ignore[union-attr]
        break
    else:
        pytest.fail("the run never finished")
    assert kills >= 2, "the runs finished before they could be killed: nothing tested"
    counts = Counter((name, rdtype) for name, rdtype, _ in triples(out.read_text(), fmt))
    assert set(counts) == expected_pairs(("A", "AAAA"))
    assert max(counts.values()) == 1, [p for p, c in counts.items() if c > 1][:5]
    assert completed_pairs(str(out), fmt) == expected_pairs(("A", "AAAA"))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_workers_and_flushes_what_they_completed(tmp_path, server, signum, code):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen([SCRIPT, "bulk", str(names), "--nameserver", server, "-o", str(out),
                                "--rate", "1000", "-c", "20", "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "--resume" in stderr
    assert signal.Signals(signum).name in stderr
    lines = out.read_text().splitlines()
    assert 0 < len(lines) < N
    assert f"the {len(lines)} results written are kept" in stderr  # every completed result is in the file
    assert all(json.loads(line)["status"] == "NOERROR" for line in lines)
    finish = bulk(str(names), "--nameserver", server, "-o", str(out), "--resume", "--workers", "3")
    assert finish.returncode == 0, finish.stderr
    assert f"({len(lines)} skipped" in finish.stderr
    pairs = Counter((r["name"], r["type"]) for r in map(json.loads, out.read_text().splitlines()))
    assert set(pairs) == expected_pairs()
    assert max(pairs.values()) == 1


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_a_crashed_worker_is_reported_and_the_others_results_kept(tmp_path, server):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen([SCRIPT, "bulk", str(names), "--nameserver", server, "-o", str(out),
                                "--rate", "1000", "-c", "20", "--workers", "3"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children_of(process.pid)
    assert len(workers) == 3
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "worker 0 exited with code -9" in stderr
    assert "--resume" in stderr
    done = Counter((r["name"], r["type"]) for r in map(json.loads, out.read_text().splitlines()))
    assert max(done.values()) == 1
    assert 2 * N // 3 - 300 < len(done) < N  # the two others finished their shares
    finish = bulk(str(names), "--nameserver", server, "-o", str(out), "--resume", "--workers", "3")
    assert finish.returncode == 0, finish.stderr
    pairs = Counter((r["name"], r["type"]) for r in map(json.loads, out.read_text().splitlines()))
    assert set(pairs) == expected_pairs()
    assert max(pairs.values()) == 1


def test_workers_must_be_positive(tmp_path, server):
    result = bulk(str(write_names(tmp_path / "n.txt", ["h1.example.test"])), "--nameserver", server, "--workers", "0")
    assert result.returncode == 2
    assert "--workers must be at least 1" in result.stderr


def test_wildcards_and_stats_file_with_workers(tmp_path, server):
    names = write_names(tmp_path / "names.txt", [
        "a.wild.example.test", "b.wild.example.test", "real.wild.example.test", "h1.example.test",
        *(f"h{i}.example.test" for i in range(100))])
    stats = tmp_path / "stats.jsonl"
    marked = bulk(str(names), "--nameserver", server, "--wildcards", "--workers", "2", "--stats-file", str(stats))
    assert marked.returncode == 0, marked.stderr
    records = {r["name"]: r for r in map(json.loads, marked.stdout.splitlines())}
    assert records["a.wild.example.test."]["wildcard"] is True
    assert records["real.wild.example.test."]["wildcard"] is False
    assert "2 wildcard answers" in marked.stderr
    assert "(2 workers)" in marked.stderr
    last = json.loads(stats.read_text().splitlines()[-1])
    assert last["resolved"] == last["done"] == 104
    assert last["counts"] == {"NOERROR": 104}
    assert last["in_flight"] == 0
    assert last["wildcards"] == 2
    dropped = bulk(str(names), "--nameserver", server, "--drop-wildcards", "--workers", "3")
    assert dropped.returncode == 0, dropped.stderr
    kept = {r["name"] for r in map(json.loads, dropped.stdout.splitlines())}
    assert "a.wild.example.test." not in kept
    assert "real.wild.example.test." in kept
    assert len(kept) == 101
