"""``loop.getaddrinfo``-shaped results and errors, built from answers."""

from __future__ import annotations

import socket
from typing import Any

from .answer import Answer
from .errors import InvalidName, NoAnswer, NXDomain, ResolveError, ResolveTimeout, ServFail

_PROTOCOLS: dict[int, int] = {socket.SOCK_STREAM: socket.IPPROTO_TCP, socket.SOCK_DGRAM: socket.IPPROTO_UDP}


def resolve_port(port: str | int | bytes | None, socktype: int) -> int:
    """A numeric port, or a service name looked up in the services database."""
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode("ascii")
    if isinstance(port, int):
        if not 0 <= port <= 65535:
            raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
        return port
    if port.isdigit():
        return resolve_port(int(port), socktype)
    protocol = "udp" if socktype == socket.SOCK_DGRAM else "tcp"
    try:
        return socket.getservbyname(port, protocol)
    except OSError:
        raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype") from None


def build_addrinfo(
    answers: list[Answer], port: Any, family: int, socktype: int, proto: int, flags: int
) -> list[tuple[Any, ...]]:
    """One 5-tuple per address and socket type, in the order of the answers."""
    if socktype:
        kinds = [(socktype, proto or _PROTOCOLS.get(socktype, 0))]
    else:
        kinds = [(socket.SOCK_STREAM, socket.IPPROTO_TCP), (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
                 (socket.SOCK_RAW, 0)]
    number = resolve_port(port, socktype)
    canonical = ""
    if flags & socket.AI_CANONNAME and answers:
        canonical = answers[0].canonical_name.rstrip(".")
    result: list[tuple[Any, ...]] = []
    for answer in answers:
        for address in answer.addresses:
            sockaddr: tuple[Any, ...]
            if ":" in address:
                fam, sockaddr = socket.AF_INET6, (address, number, 0, 0)
            else:
                fam, sockaddr = socket.AF_INET, (address, number)
            if family and fam != family:
                continue
            for kind, protocol in kinds:
                result.append((fam, kind, protocol, canonical, sockaddr))
                canonical = ""  # like the C library: only the first entry carries it
    if not result:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return result


def gaierror_for(error: Exception) -> socket.gaierror:
    """The ``socket.gaierror`` that code written for ``loop.getaddrinfo`` expects."""
    if isinstance(error, (NXDomain, InvalidName, ValueError)):
        return socket.gaierror(socket.EAI_NONAME, f"Name or service not known ({error})")
    if isinstance(error, NoAnswer):
        code = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
        return socket.gaierror(code, f"No address associated with hostname ({error})")
    if isinstance(error, (ResolveTimeout, ServFail)):
        return socket.gaierror(socket.EAI_AGAIN, f"Temporary failure in name resolution ({error})")
    if isinstance(error, ResolveError):
        return socket.gaierror(socket.EAI_FAIL, f"Non-recoverable failure in name resolution ({error})")
    return socket.gaierror(socket.EAI_FAIL, str(error))
