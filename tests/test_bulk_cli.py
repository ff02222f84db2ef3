"""``asyncresolve bulk`` end to end, as a subprocess against a lab running in a thread."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import random
import select
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
    "*.wild 60 IN A 192.0.2.99", "real.wild 60 IN A 192.0.2.1", "mx 300 IN MX 10 mail", "mail 300 IN A 192.0.2.25",
    *(f"h{i} 300 IN A 198.18.{i >> 8}.{i & 255}" for i in range(N)),
]) + "\n"
SCRIPT = str(Path(sys.executable).with_name("asyncresolve"))


#: Kills at random points before a resumed run is let finish (on a loaded machine a run
#: killed every second or two may never get through the whole input).
MAX_KILLS = 8


@pytest.fixture(scope="module")
def lab():
    with DNSLab({"example.test.": ZONE}, record_queries=False) as running:
        yield running


@pytest.fixture
def server(lab) -> str:
    ip, port = lab.stub_server
    return f"{ip}:{port}"


def bulk(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, "bulk", *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def write_names(path: Path, names: list[str]) -> Path:
    path.write_text("\n".join(names) + "\n")
    return path


MIXED = [
    "# a comment", "", "   h1.example.test   ", "H2.EXAMPLE.TEST.", "https://user:pw@h3.example.test:8443/a?b=c",
    "http://[::1]/x", "bad..name", "exa mple.test", "nope.example.test", "mx.example.test",
]


def test_jsonl_with_comments_urls_bad_lines_and_types(tmp_path, server):
    names = write_names(tmp_path / "names.txt", MIXED)
    result = bulk(str(names), "--nameserver", server, "-t", "A,MX")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_pair = {(r["name"], r["type"]): r for r in records}
    assert len(records) == len(by_pair) == 8 * 2
    h3 = by_pair[("h3.example.test.", "A")]
    assert h3["status"] == "NOERROR"
    assert h3["class"] == "IN"
    assert h3["tries"] == 1
    assert h3["data"]["answers"] == [{"name": "h3.example.test.", "type": "A", "class": "IN", "ttl": 300,
                                      "data": "198.18.0.3"}]
    assert h3["resolver"] == server
    assert h3["source"] == "cares"
    assert h3["elapsed"] > 0
    assert by_pair[("h2.example.test.", "A")]["status"] == "NOERROR"
    assert by_pair[("h1.example.test.", "MX")]["status"] == "NODATA"
    assert by_pair[("nope.example.test.", "A")]["status"] == "NXDOMAIN"
    assert by_pair[("nope.example.test.", "A")]["data"]["negative_ttl"] == 300
    assert by_pair[("mx.example.test.", "MX")]["data"]["answers"][0]["data"] == "10 mail.example.test."
    for bad in ("bad..name", "exa mple.test"):
        assert by_pair[(bad, "A")]["status"] == "INVALID", by_pair.get((bad, "A"))
        assert by_pair[(bad, "A")]["tries"] == 0
    # An IPv6 literal URL gives the host "::1": no name to resolve, whoever rejects it.
    assert [r["status"] for r in records if r["name"].startswith("::1")] == ["INVALID", "INVALID"]
    # Not a terminal: no progress bar, only the final summary on stderr.
    assert result.stderr.count("\n") == 1
    assert "\x1b" not in result.stderr
    assert "16 results" in result.stderr
    assert "INVALID 6" in result.stderr


def test_csv_and_text_formats_from_stdin(server):
    names = "\n".join(["h7.example.test", "nope.example.test", "bad..name"]) + "\n"
    result = bulk("-", "--nameserver", server, "--format", "csv", stdin=names)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_name = {row["name"]: row for row in rows}
    assert by_name["h7.example.test."]["status"] == "NOERROR"
    assert by_name["h7.example.test."]["data"] == "198.18.0.7"
    assert by_name["h7.example.test."]["ttl"] == "300"
    assert by_name["nope.example.test."]["status"] == "NXDOMAIN"
    assert by_name["bad..name"]["status"] == "INVALID"
    text = bulk("--nameserver", server, "--format", "text", stdin=names)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(";; NOERROR A h7.example.test. (1 records"))
    assert lines[header + 1] == "h7.example.test.\t300\tIN\tA\t198.18.0.7"
    assert any(line.startswith(";; NXDOMAIN A nope.example.test. (0 records") for line in lines)
    assert any(line.startswith(";; INVALID A bad..name (0 records") for line in lines)


def test_usage_errors(tmp_path, server):
    assert bulk(str(tmp_path / "missing.txt"), "--nameserver", server).returncode == 2
    assert bulk("--nameserver", server, "-t", "NOPE", stdin="a.test\n").returncode == 2
    assert bulk("--nameserver", server, "--resume", stdin="a.test\n").returncode == 2
    assert bulk("--nameserver", "not-an-ip", stdin="a.test\n").returncode == 2
    assert bulk("--nameserver", server, "-c", "0", stdin="a.test\n").returncode == 2
    notes = tmp_path / "notes.txt"
    notes.write_text("not an output file\n")
    wrong = bulk("--nameserver", server, "-o", str(notes), "--resume", stdin="h1.example.test\n")
    assert wrong.returncode == 2
    assert "does not look like jsonl output" in wrong.stderr
    assert notes.read_text() == "not an output file\n"


def test_wildcards_marked_or_dropped(tmp_path, server):
    names = write_names(tmp_path / "names.txt", ["a.wild.example.test", "b.wild.example.test",
                                                  "real.wild.example.test", "h1.example.test"])
    plain = [json.loads(line) for line in bulk(str(names), "--nameserver", server).stdout.splitlines()]
    assert all("wildcard" not in record for record in plain)
    marked = {r["name"]: r["wildcard"] for r in map(json.loads, bulk(str(names), "--nameserver", server,
                                                                      "--wildcards").stdout.splitlines())}
    assert marked == {"a.wild.example.test.": True, "b.wild.example.test.": True,
                      "real.wild.example.test.": False, "h1.example.test.": False}
    dropped = bulk(str(names), "--nameserver", server, "--drop-wildcards")
    assert sorted(json.loads(line)["name"] for line in dropped.stdout.splitlines()) == [
        "h1.example.test.", "real.wild.example.test."]
    assert "2 wildcard answers" in dropped.stderr


def expected_pairs(types: tuple[str, ...] = ("A",)) -> set[tuple[str, str]]:
    return {(f"h{i}.example.test.", t) for i in range(N) for t in types}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "text"])
@pytest.mark.timeout(300)
def test_resume_after_sigkill_at_random_points_loses_and_repeats_nothing(tmp_path, server, fmt):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    out = tmp_path / f"out.{fmt}"
    rng = random.Random(fmt)
    command = [SCRIPT, "bulk", str(names), "--nameserver", server, "-t", "A,AAAA", "-o", str(out),
               "--format", fmt, "--rate", "1500", "-c", "50", "--resume"]
    kills = 0
    for _ in range(MAX_KILLS + 1):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            process.wait(timeout=rng.uniform(0.5, 2.0) if kills < MAX_KILLS else 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            kills += 1
            if kills == 2:  # make sure a torn last line is there to detect, whatever the timing did
                with out.open("a") as handle:
                    handle.write({"jsonl": '{"name":"h1.exa', "csv": "h1.example.test.,A,NOERR",
                                  "text": ";; NOERROR A h9.example.test. (1 records, cares, 1 ms, 1 tries)\n"}[fmt])
            continue
        assert process.returncode == 0, process.stderr.read()  # type: ignore[union-attr]
        break
    else:
        pytest.fail("the run never finished")
    assert kills >= 2, "the runs finished before they could be killed: nothing tested"
    pairs = read_pairs(out, fmt)
    counts = Counter(pairs)
    assert set(counts) == expected_pairs(("A", "AAAA"))
    assert max(counts.values()) == 1, [p for p, c in counts.items() if c > 1][:5]
    assert completed_pairs(str(out), fmt) == expected_pairs(("A", "AAAA"))


def read_pairs(path: Path, fmt: str) -> list[tuple[str, str]]:
    text = path.read_text()
    assert text.endswith("\n")
    if fmt == "jsonl":
        return [(r["name"], r["type"]) for r in map(json.loads, text.splitlines())]
    if fmt == "csv":
        return [(row["name"], row["type"]) for row in csv.DictReader(io.StringIO(text))]
    return [(line.split()[3], line.split()[2]) for line in text.splitlines() if line.startswith(";; ")]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_cleanly_with_a_resume_hint(tmp_path, server, signum, code):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    out = tmp_path / "out.jsonl"
    returncode, stderr = stop_mid_run(names, server, out, signum, "--rate", "1000", "-c", "20")
    assert returncode == code, stderr
    assert "--resume" in stderr
    assert signal.Signals(signum).name in stderr
    finish_with_resume(names, server, out)


def stop_mid_run(names: Path, server: str, out: Path, signum: int, *options: str) -> tuple[int, str]:
    """Run ``bulk NAMES -o OUT`` and send it ``signum`` once 2 KB of results are written:
    its exit status and stderr."""
    process = subprocess.Popen([SCRIPT, "bulk", str(names), "--nameserver", server, "-o", str(out), *options],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (not out.exists() or out.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def finish_with_resume(names: Path, server: str, out: Path, *options: str) -> None:
    """OUT holds complete lines only, some but not all; ``--resume`` skips them and finishes
    with every pair once."""
    lines = out.read_text().splitlines()
    assert 0 < len(lines) < N
    assert all(json.loads(line)["status"] == "NOERROR" for line in lines)  # every line complete
    finish = bulk(str(names), "--nameserver", server, "-o", str(out), "--resume", *options)
    assert finish.returncode == 0, finish.stderr
    assert f"({len(lines)} skipped" in finish.stderr
    pairs = Counter((r["name"], r["type"]) for r in map(json.loads, out.read_text().splitlines()))
    assert set(pairs) == expected_pairs()
    assert max(pairs.values()) == 1


def test_progress_bar_drawn_on_a_terminal(tmp_path, server):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    controller, terminal = pty.openpty()
    process = subprocess.Popen([SCRIPT, "bulk", str(names), "--nameserver", server, "-o", str(tmp_path / "o"),
                                "--rate", "3000"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=terminal, env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
    os.close(terminal)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=60) == 0
    os.close(controller)
    screen = seen.decode("utf-8", "replace")
    assert "\x1b[" in screen  # cursor movement: a live display
    assert "bulk" in screen
    assert f"{N}/{N}" in screen
    assert "NOERROR" in screen
    assert "/s" in screen
    assert "━" in screen  # rich's bar
    assert f"asyncresolve bulk: {N} results" in screen


def test_stats_file_lines(tmp_path, server):
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(600)])
    stats = tmp_path / "stats.jsonl"
    result = bulk(str(names), "--nameserver", server, "-o", str(tmp_path / "o"), "--rate", "500",
                  "--stats-file", str(stats), "--stats-interval", "0.3")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(lines) >= 3
    assert [line["done"] for line in lines] == sorted(line["done"] for line in lines)
    assert lines[-1]["done"] == 600
    assert lines[-1]["counts"] == {"NOERROR": 600}
    assert lines[-1]["total"] == 600


def test_a_silent_server_is_dropped_with_a_warning(tmp_path, lab, server):
    silent = lab.servers[0]
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(400)])
    original = silent.faults.drop_rate
    silent_address = f"{silent.host}:{silent.port}"
    silent.faults.drop_rate = 1.0
    try:
        result = bulk(str(names), "--nameserver", server, "--nameserver", silent_address, "--timeout", "0.3",
                      "--retries", "3", "-c", "20")
    finally:
        silent.faults.drop_rate = original
    assert result.returncode == 0, result.stderr
    assert f"no longer sending to {silent_address}" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert Counter(r["status"] for r in records) == Counter({"NOERROR": 400})


def test_demo_shows_a_bulk_run():
    result = subprocess.run([SCRIPT, "demo", "--quick"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("== bulk:", 1)[1]
    assert "1006 results" in section
    assert "NOERROR 670  NXDOMAIN 334  NODATA 1  INVALID 1" in section
    assert "666 answers match the *.users wildcard" in section
    lines = [json.loads(line) for line in section.splitlines() if line.strip().startswith("{")]
    assert {line["status"] for line in lines} >= {"NOERROR", "NXDOMAIN", "INVALID"}
    assert any(line.get("wildcard") is True for line in lines)


def test_resolvers_file_spreads_the_load(tmp_path, lab, server):
    other = lab.server_for("example.test.")  # the zone's own server answers it too
    resolvers = tmp_path / "resolvers.txt"
    resolvers.write_text(f"# upstreams\n{server}\n\n{other.host}:{other.port}  # the zone's server\n")
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(200)])
    result = bulk(str(names), "--resolvers", str(resolvers))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert Counter(r["status"] for r in records) == Counter({"NOERROR": 200})
    assert Counter(r["resolver"] for r in records) == Counter({server: 100, f"{other.host}:{other.port}": 100})


def _records_without_timing(stdout: str) -> set[str]:
    records = []
    for record in map(json.loads, stdout.splitlines()):
        record.pop("elapsed")
        record.pop("source")
        # c-ares sets its own per-try timeout from the server's recent latency (5 x the
        # average, at least 250 ms: c-ares's ares_metrics.c), whatever --timeout says, so a
        # Python lab server slowed by a loaded machine gets some first tries retried
        record.pop("tries")
        if "error" in record:  # the message names the backend: "(from native)", "(from cares)"
            record["error"] = record["error"].replace("(from native)", "(from BACKEND)").replace(
                "(from cares)", "(from BACKEND)")
        records.append(json.dumps(record, sort_keys=True))
    return set(records)


def test_native_backend_end_to_end_gives_what_cares_gives(tmp_path, server):
    """``--backends native`` runs through the express lane and its callback-driven workers."""
    names = write_names(tmp_path / "names.txt", MIXED + [f"h{i}.example.test" for i in range(500)])
    # a generous try timeout: the lab's server is Python, and on a loaded machine its queue of
    # 500 queries in flight can take longer than the default 2 s
    native = bulk(str(names), "--nameserver", server, "-t", "A,MX", "--backends", "native", "--timeout", "10")
    cares = bulk(str(names), "--nameserver", server, "-t", "A,MX", "--timeout", "10")
    assert native.returncode == 0, native.stderr
    assert cares.returncode == 0, cares.stderr
    assert _records_without_timing(native.stdout) == _records_without_timing(cares.stdout)
    records = [json.loads(line) for line in native.stdout.splitlines()]
    assert len(records) == (8 + 500) * 2
    assert {r["source"] for r in records if r["status"] == "NOERROR"} == {"native"}
    assert {r["tries"] for r in records} == {0, 1}  # its tries wait --timeout: none retried
    assert Counter(r["status"] for r in records) == Counter(
        {"NOERROR": 504, "NODATA": 504, "INVALID": 6, "NXDOMAIN": 2})


def test_native_run_stopped_by_sigint_resumes_without_loss_or_repeat(tmp_path, lab, server):
    """The driven workers stop on SIGINT (what is complete is written) and --resume finishes."""
    names = write_names(tmp_path / "names.txt", [f"h{i}.example.test" for i in range(N)])
    out = tmp_path / "out.jsonl"
    stub = lab.stub
    original = stub.faults.delay
    stub.faults.delay = 0.05  # ~400 names/s at -c 20: the signal lands mid-run
    try:
        returncode, stderr = stop_mid_run(names, server, out, signal.SIGINT, "--backends", "native", "-c", "20")
    finally:
        stub.faults.delay = original
    assert returncode == 130, stderr
    finish_with_resume(names, server, out, "--backends", "native")
