"""Loopback addresses for lab servers.

Linux routes all of 127.0.0.0/8 to the loopback interface, so any address in
it can be bound without configuration.  Each lab takes a random /24 block
``127.X.Y.0/24`` with ``X >= 64`` (so never 127.0.0.1 or systemd-resolved's
127.0.0.53) and hands out ``.1`` to ``.254``, moving on to the next block if
it needs more.
"""

from __future__ import annotations

import ipaddress
import random

FIRST_SECOND_OCTET = 64


def random_block(rng: random.Random | None = None) -> str:
    """A random ``"127.X.Y"`` prefix with X in 64..254."""
    rng = rng or random.SystemRandom()
    return f"127.{rng.randint(FIRST_SECOND_OCTET, 254)}.{rng.randint(0, 255)}"


class LoopbackAllocator:
    """Hands out distinct loopback addresses from *block* (``"127.X.Y"``) onwards."""

    def __init__(self, block: str | None = None) -> None:
        block = block or random_block()
        parts = block.split(".")
        if len(parts) != 3 or parts[0] != "127":
            raise ValueError(f"address block must look like '127.X.Y', not {block!r}")
        second, third = int(parts[1]), int(parts[2])
        if second == 0 or not (0 < second < 256 and 0 <= third < 256):
            raise ValueError(f"address block {block!r} is not in 127.1.0 - 127.255.255")
        self.block = block
        self._next = int(ipaddress.IPv4Address(f"{block}.1"))

    def allocate(self) -> str:
        """The next free address (host parts 0 and 255 are skipped)."""
        while True:
            address = ipaddress.IPv4Address(self._next)
            self._next += 1
            if address not in ipaddress.IPv4Network("127.0.0.0/8"):
                raise RuntimeError("loopback addresses exhausted")
            if address.packed[3] not in (0, 255):
                return str(address)
