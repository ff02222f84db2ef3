"""The command line against the lab: c-ares to the stub server, the iterative backend with --trace."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncresolve.testing import DNSLab

ZONES = {
    "example.test.": """
        @    3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
        @    3600 IN NS  ns1
        ns1  3600 IN A   127.0.0.1
        www  60   IN A   192.0.2.10
        @    300  IN MX  10 mail
        mail 300  IN A   192.0.2.25
        @    600  IN TXT "v=spf1 -all"
    """,
}


@pytest.fixture(scope="module")
def lab():
    with DNSLab(ZONES) as running:  # in a background thread: the CLI runs as a subprocess
        yield running


def run(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("asyncresolve")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)


def test_lookup_mx_and_txt_through_cares(lab):
    ip, port = lab.stub_server
    result = run("lookup", "example.test", "-t", "MX", "-t", "TXT", "--backends", "cares",
                 "--nameserver", f"{ip}:{port}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "source cares" in lines[0]
    assert lines[1].split() == ["example.test.", "300", "IN", "MX", "10", "mail.example.test."]
    assert lines[3].split("\t") == ["example.test.", "600", "IN", "TXT", '"v=spf1 -all"']


def test_nxdomain_through_cares_exit_3_with_negative_ttl(lab):
    ip, port = lab.stub_server
    result = run("lookup", "nope.example.test", "--backends", "cares", "--nameserver", f"{ip}:{port}", "--json")
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert data[0]["error"] == "NXDomain"
    assert data[0]["ttl"] == 300


def test_iterative_trace_shows_the_referral_path(lab):
    root_ip, port = lab.root_hints[0]
    result = run("lookup", "www.example.test", "--backends", "iterative", "--root-hint", f"{root_ip}:{port}",
                 "--port", str(port), "--trace")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "source iterative" in out
    assert "www.example.test.\t60\tIN\tA\t192.0.2.10" in out
    trace = [line for line in out.splitlines() if line.startswith(";; trace:")]
    assert len(trace) >= 3
    assert f"@{root_ip}#{port}" in trace[0]
    assert "referral to test." in trace[0]
    assert "answer" in trace[-1]


def test_nameserver_takes_effect_without_backends(lab):
    ip, port = lab.stub_server
    result = run("lookup", "www.example.test", "--nameserver", f"{ip}:{port}")
    assert result.returncode == 0, result.stderr
    assert "source cares" in result.stdout
    assert "192.0.2.10" in result.stdout
    # a server where nothing listens is asked, not ignored in favour of resolv.conf or the hosts file
    result = run("lookup", "localhost", "--nameserver", "127.0.0.1:1", "--timeout", "2")
    assert result.returncode != 0
    assert "source hosts" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_port_applies_to_nameservers_given_without_one(lab):
    ip, port = lab.stub_server
    result = run("lookup", "example.test", "-t", "15", "--nameserver", ip, "--port", str(port))
    assert result.returncode == 0, result.stderr
    assert "IN\tMX\t10 mail.example.test." in result.stdout


def test_root_hint_and_trace_take_effect_without_backends(lab):
    root_ip, port = lab.root_hints[0]
    result = run("lookup", "www.example.test", "--root-hint", root_ip, "--port", str(port), "--trace")
    assert result.returncode == 0, result.stderr
    assert "source iterative" in result.stdout
    assert any(line.startswith(";; trace:") and "referral to test." in line for line in result.stdout.splitlines())
