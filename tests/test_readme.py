"""Every example of README.md runs as written, so the README cannot drift from the code.

Conventions for anyone adding to README.md (this test finds new blocks by itself):

* Every ```python block is a complete program: its own imports, no top-level ``await``
  (wrap it in ``async def main()`` + ``asyncio.run(main())``). It runs as a script in a fresh
  interpreter, in an empty temporary directory, and must exit 0 within 60 seconds.
* A ```python block that defines ``test_`` functions is a pytest module instead: it runs with
  ``python -m pytest`` (the asyncresolve fixtures come from the installed plugin; pytest-asyncio
  in its default strict mode, so async tests carry ``@pytest.mark.asyncio``) and must pass.
* Network: a block runs in a private mount namespace whose ``/etc/resolv.conf`` names the stub
  server of a DNSLab on port 53 of a random 127.x address, so the default chain (hosts file,
  the OS, c-ares) works offline. The lab serves ``example.test.`` (``README_ZONES`` below:
  ``www`` A/AAAA, ``mail`` MX, ``alias`` CNAME...); any other name gets NXDOMAIN from the
  lab's root. A block that needs more (faults, several zones, an iterative resolver) starts its
  own ``DNSLab`` from ``asyncresolve.testing``, like a reader would.
* ```console blocks are CLI transcripts: each line starting with ``$ `` is run by ``sh`` in the
  same namespace (``asyncresolve`` is the installed command) and must exit 0; the lines after
  it are its expected output, compared line by line with every number masked (TTLs and
  timings vary).
* ```json blocks are sample output in JSON lines: every non-empty line must parse as JSON.
* ```sh blocks are instructions (set-up, synopses with placeholders) and are not run: the set-up
  commands are what ``.ci/run`` runs, and every subcommand has its own tests.
* No other escape hatch: a block that cannot run here does not belong in the README as code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asyncresolve.testing import DNSLab
from asyncresolve.testing.peers import require_peer, require_root

README = Path(__file__).resolve().parent.parent / "README.md"
TIMEOUT = 60.0

README_ZONES = {
    "example.test.": """
        @     3600 IN SOA  ns1 hostmaster 1 7200 900 1209600 300
        @     3600 IN NS   ns1
        ns1   3600 IN A    127.0.0.1
        @     300  IN MX   10 mail
        www   60   IN A    192.0.2.10
        www   60   IN AAAA 2001:db8::10
        alias 60   IN CNAME www
        mail  300  IN A    192.0.2.25
        @     300  IN TXT  "v=spf1 -all"
    """,
}


@dataclass(frozen=True)
class Block:
    language: str
    line: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.language}-line{self.line}"


def readme_blocks(path: Path = README) -> list[Block]:
    """The fenced code blocks of *path*, with the line of their opening fence."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(```+)\s*([\w-]*)", lines[i])
        if fence is None:
            i += 1
            continue
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence.group(1)):
            body.append(lines[i])
            i += 1
        blocks.append(Block(fence.group(2).lower(), start, "\n".join(body) + "\n"))
        i += 1
    return blocks


BLOCKS = readme_blocks()
PYTHON = [b for b in BLOCKS if b.language in ("python", "py")]
CONSOLE = [b for b in BLOCKS if b.language == "console"]


def test_the_readme_has_runnable_examples() -> None:
    assert len(PYTHON) >= 5
    assert CONSOLE
    assert all(b.language in ("python", "py", "console", "sh", "bash", "json", "") for b in BLOCKS), \
        "a fenced block in a language this test does not know: add its convention here"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language == "json"], ids=lambda b: f"line{b.line}")
def test_json_samples_are_json_lines(block: Block) -> None:
    for line in block.text.splitlines():
        if line.strip():
            json.loads(line)


@pytest.fixture(scope="module")
def readme_namespace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The command prefix that runs a child in a private mount namespace whose resolv.conf
    names a lab's stub server on port 53."""
    require_peer("unshare")
    require_root("a private mount namespace and a lab on port 53")
    lab = DNSLab(README_ZONES, port=53).start_in_thread()
    try:
        ip, port = lab.stub_server
        assert port == 53
        assert ip.startswith("127.")
        conf = tmp_path_factory.mktemp("readme") / "resolv.conf"
        conf.write_text(f"nameserver {ip}\noptions timeout:1 attempts:2\n")
        yield ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$0" /etc/resolv.conf && shift && exec "$@"', str(conf), "--"]
    finally:
        lab.stop_thread()


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # The README's reader has none of the suite's settings (ASYNCRESOLVE_NO_PUBLIC_ROOTS stays:
    # it only forbids the bundled IANA roots, which no example may query from here).
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_example_runs(block: Block, readme_namespace: list[str], tmp_path: Path) -> None:
    script = tmp_path / ("test_readme_example.py" if re.search(r"^\s*(async\s+)?def test_", block.text, re.M)
                         else "readme_example.py")
    script.write_text(block.text)
    if script.name.startswith("test_"):
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(script)]
    else:
        command = [sys.executable, str(script)]
    result = _run([*readme_namespace, *command], tmp_path)
    assert result.returncode == 0, (
        f"README.md line {block.line}: the example failed ({result.returncode})\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )


def console_commands(block: Block) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines), ...]`` of a console transcript."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def _masked(lines: list[str]) -> list[str]:
    return [re.sub(r"\d+(\.\d+)?", "N", line.rstrip()) for line in lines if line.strip()]


@pytest.mark.parametrize("block", CONSOLE, ids=[b.id for b in CONSOLE])
def test_console_example_runs(block: Block, readme_namespace: list[str], tmp_path: Path) -> None:
    steps = console_commands(block)
    assert steps, f"README.md line {block.line}: a console block without a `$ ` command"
    for command, expected in steps:
        result = _run([*readme_namespace, "sh", "-c", command], tmp_path)
        assert result.returncode == 0, f"README.md line {block.line}: `{command}` failed:\n{result.stderr}"
        assert _masked(result.stdout.splitlines()) == _masked(expected), (
            f"README.md line {block.line}: `{command}` printed\n{result.stdout}"
        )


def test_block_parser_and_masking() -> None:
    text = "intro\n```python\nprint(1)\n```\n\n```console\n$ echo 1 2\n1 2\n```\n````\nnested ``` fence\n````\n"
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"readme-parser-{os.getpid()}.md"
    try:
        path.write_text(text)
        blocks = readme_blocks(path)
    finally:
        path.unlink(missing_ok=True)
    assert [(b.language, b.line, b.text) for b in blocks] == [
        ("python", 2, "print(1)\n"), ("console", 6, "$ echo 1 2\n1 2\n"), ("", 10, "nested ``` fence\n")]
    assert console_commands(blocks[1]) == [("echo 1 2", ["1 2"])]
    assert _masked([";; ttl 5, 0.4 ms"]) == _masked([";; ttl 30, 12.25 ms"]) != _masked([";; ttl 5 s"])
