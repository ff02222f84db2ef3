"""The command line through its installed entry point, as a user runs it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def entry_point() -> list[str]:
    script = Path(sys.executable).with_name("asyncresolve")
    found = str(script) if script.exists() else shutil.which("asyncresolve")
    if found is None:
        pytest.fail("the asyncresolve console script is not installed (pip install -e .)")
    return [found]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*entry_point(), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def hosts(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("192.0.2.10 web.example.test\n2001:db8::10 web.example.test\n")
    return str(path)


def test_lookup_localhost_prints_record_ttl_and_source():
    result = run("lookup", "localhost")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "source hosts" in lines[0]
    assert lines[1].split() == ["localhost.", "5", "IN", "A", "127.0.0.1"]


def test_lookup_several_types_json(hosts):
    result = run("lookup", "web.example.test", "-t", "A", "-t", "aaaa", "--json",
                 "--backends", "hosts", "--hosts-file", hosts)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["type"] for d in data] == ["A", "AAAA"]
    assert data[0]["records"][0] == {"name": "web.example.test.", "ttl": 5, "address": "192.0.2.10",
                                     "type": "A", "text": "192.0.2.10"}
    assert data[1]["records"][0]["address"] == "2001:db8::10"
    assert data[0]["source"] == "hosts"


def test_negative_answers_exit_nonzero_with_one_line(hosts):
    result = run("lookup", "web.example.test", "-t", "PTR", "--backends", "hosts", "--hosts-file", hosts)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no backend" in result.stderr
    result = run("lookup", "localhost", "-t", "AAAA", "--backends", "hosts", "--hosts-file", hosts)
    assert result.returncode == 1  # localhost is not in this file: every backend passed


def test_nodata_exit_status(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("192.0.2.10 v4only.test\n")
    result = run("lookup", "v4only.test", "-t", "AAAA", "--backends", "hosts", "--hosts-file", str(path))
    assert result.returncode == 4
    assert result.stderr.startswith("asyncresolve: NODATA: v4only.test. has no AAAA record")


def test_nxdomain_through_system_backend_stays_on_loopback():
    result = run("lookup", "no-such-name.invalid", "--backends", "system", "--timeout", "5")
    assert result.returncode in (3, 6), result  # NXDOMAIN, or a failure of the loopback server
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lookup", "bad..name"], "empty label"),
        (["lookup", "x.test", "-t", "BOGUS"], "unknown record type"),
        (["lookup", "x.test", "--backends", "hosts,nope"], "unknown backend"),
        (["lookup", "x.test", "--timeout", "0"], "timeout must be"),
        (["lookup", "x.test", "--timeout", "nan"], "timeout must be"),
        (["lookup", "x.test", "--timeout", "inf"], "timeout must be"),
        (["lookup", "."], "root"),
        (["lookup", "x.test", "--nameserver", "not-an-ip"], "must be an IP address"),
        (["lookup", "x.test", "--backends", "cares", "--nameserver", "not-an-ip"], "must be an IP address"),
        (["lookup", "x.test", "--root-hint", "zzz"], "must be an IP address"),
        (["lookup", "x.test", "--backends", "hosts", "--nameserver", "127.0.0.1"], "--nameserver configures"),
        (["lookup", "x.test", "--backends", "cares", "--trace"], "--trace configures"),
        (["lookup", "x.test", "--backends", "system", "--hosts-file", "/etc/hosts"], "--hosts-file configures"),
        (["lookup", "x.test", "--port", "5353"], "--port applies"),
        (["lookup", "x.test", "--nameserver", "127.0.0.1", "--port", "0"], "--port must be"),
        (["lookup", "x\\.test"], "not allowed in a name"),
        (["lookup", "x" * 100_000], "longer than 253"),
        (["lookup", "x.test", "--backends", "cares", "--nameserver", "127.0.0.1:notaport"], "bad port"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_status_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_usage_errors_from_argparse():
    result = run("lookup")
    assert result.returncode == 2
    assert "usage:" in result.stderr
    result = run("frobnicate")
    assert result.returncode == 2


def test_version():
    from asyncresolve import __version__

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"asyncresolve {__version__}"


def test_hosts_file_takes_effect_without_backends(hosts):
    result = run("lookup", "web.example.test", "--hosts-file", hosts)
    assert result.returncode == 0, result.stderr
    assert "source hosts" in result.stdout
    assert "192.0.2.10" in result.stdout


def test_json_has_one_shape_whatever_the_number_of_types(hosts):
    one = json.loads(run("lookup", "web.example.test", "--json", "--hosts-file", hosts).stdout)
    two = json.loads(run("lookup", "web.example.test", "-t", "A", "-t", "28", "--json", "--hosts-file", hosts).stdout)
    assert isinstance(one, list)
    assert len(one) == 1
    assert one[0]["type"] == "A"
    assert [d["type"] for d in two] == ["A", "AAAA"]
    assert one[0] == two[0]
    error = run("lookup", "nothere.test", "--json", "--hosts-file", hosts)
    data = json.loads(error.stdout)
    assert isinstance(data, list)
    assert set(data[0]) >= {"name", "type", "error", "message"}


def test_bulk_command_collects_garbage_less_often_and_lookup_does_not(monkeypatch, tmp_path):
    import gc

    import asyncresolve.bulk.cli
    from asyncresolve import cli

    seen: list[tuple[int, int, int]] = []
    monkeypatch.setattr(asyncresolve.bulk.cli, "main", lambda args: seen.append(gc.get_threshold()) or 0)
    before = gc.get_threshold()
    names = tmp_path / "names.txt"
    names.write_text("a.test\n")
    try:
        assert cli.main(["bulk", str(names), "--nameserver", "127.0.0.1:1"]) == 0
        assert seen == [cli.BULK_GC_THRESHOLDS]
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
    assert before != cli.BULK_GC_THRESHOLDS  # the default the library leaves alone
