"""Run a DNS lab from zone files until interrupted.

    python -m asyncresolve.testing serve example.test.zone other.test=other.zone [--port 53]

A ``ZONEFILE`` argument is ``ORIGIN=PATH`` or a path; without an origin the
file's ``$ORIGIN`` line is used, else the file name minus a ``.zone`` suffix.
The lab's addresses are printed as JSON on one line, then the lab serves until
Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
from pathlib import Path

from .lab import DNSLab

_ORIGIN_LINE = re.compile(r"^\$ORIGIN\s+(\S+)", re.MULTILINE | re.IGNORECASE)


def zone_argument(arg: str) -> tuple[str, str]:
    """``ORIGIN=PATH`` or ``PATH`` -> (origin, zone text)."""
    origin, sep, path = arg.partition("=")
    if not sep:
        path, origin = arg, ""
    text = Path(path).read_text()
    if not origin:
        match = _ORIGIN_LINE.search(text)
        origin = match.group(1) if match else Path(path).name.removesuffix(".zone")
    return (origin if origin.endswith(".") else origin + "."), text


def describe(lab: DNSLab) -> dict[str, object]:
    """What a user needs to point a resolver at the lab."""
    return {
        "port": lab.port,
        "root_hints": [ip for ip, _ in lab.root_hints],
        "stub_server": lab.stub_server[0],
        "servers": {str(s.name): s.host for s in lab.servers},
    }


async def serve(args: argparse.Namespace) -> None:
    zones = dict(zone_argument(arg) for arg in args.zonefiles)
    async with DNSLab(zones, port=args.port, servers_per_zone=args.servers_per_zone) as lab:
        print(json.dumps(describe(lab)), flush=True)
        if args.print_zones:
            for origin, text in lab.zones.items():
                print(f"; zone {origin}\n{text}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asyncresolve.testing", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run a DNS lab until interrupted")
    serve_cmd.add_argument("zonefiles", nargs="+", metavar="ZONEFILE", help="PATH or ORIGIN=PATH")
    serve_cmd.add_argument("--port", type=int, default=None, help="port for every server (53 needs root)")
    serve_cmd.add_argument("--servers-per-zone", type=int, default=1)
    serve_cmd.add_argument("--print-zones", action="store_true", help="also print the final zone data")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
