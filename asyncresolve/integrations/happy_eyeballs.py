"""Happy Eyeballs (RFC 8305 §5) over addresses already resolved and ordered.

The first address is tried at once; each next one starts when the previous attempt fails
or after ``delay`` seconds without an outcome, whichever comes first. The first connection
to succeed wins and every other attempt is cancelled (or closed, if it connected too).
The default delay is RFC 8305's recommended 250 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.abc

HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before the next address is tried while an attempt is still pending (RFC 8305 §5)."""


async def connect_tcp(
    addresses: Sequence[str],
    port: int,
    *,
    delay: float = HAPPY_EYEBALLS_DELAY,
    local_address: str | None = None,
) -> anyio.abc.SocketStream:
    """A TCP connection to the first of ``addresses`` (IP text, in the order to try) that
    answers; ``OSError`` when every attempt failed (its ``errors`` holds each attempt's)."""
    if not addresses:
        raise OSError("no address to connect to")
    winner: anyio.abc.SocketStream | None = None
    errors: list[OSError] = []

    async def attempt(address: str, finished: anyio.Event, scope: anyio.CancelScope) -> None:
        nonlocal winner
        try:
            stream = await anyio.connect_tcp(address, port, local_host=local_address)
        except OSError as error:
            errors.append(error)
        else:
            if winner is None:
                winner = stream
                scope.cancel()
            else:
                await stream.aclose()
        finally:
            finished.set()

    try:
        async with anyio.create_task_group() as group:
            for address in addresses:
                finished = anyio.Event()
                group.start_soon(attempt, address, finished, group.cancel_scope)
                with anyio.move_on_after(delay):
                    await finished.wait()
    except BaseException:
        if winner is not None:
            await anyio.aclose_forcefully(winner)
        raise
    if winner is None:
        failure = OSError(f"cannot connect to any of {', '.join(addresses)} port {port}: "
                          + "; ".join(str(error) for error in errors))
        failure.errors = errors  # type: ignore[attr-defined]  # each attempt's error, attached to the OSError raised
        raise failure from errors[-1]
    return winner


__all__ = ["HAPPY_EYEBALLS_DELAY", "connect_tcp"]
