"""What every integration does before a connection: the addresses to try, in order, that
the policy allows; and the ``OSError`` a resolution failure becomes."""

from __future__ import annotations

import errno
import socket

from asyncresolve import AddressRefused, NoAnswer, NXDomain, ResolveError, Resolver, ResolveTimeout, ServFail
from asyncresolve.addrselect import addrconfig_families, interleave_families, sort_destinations
from asyncresolve.policy import AddressPolicy, parse_ip_host


async def connect_addresses(
    resolver: Resolver,
    host: str,
    *,
    family: int = socket.AF_UNSPEC,
    policy: AddressPolicy | None = None,
    addrconfig: bool = True,
    timeout: float | None = None,
) -> list[str]:
    """The addresses of ``host`` in the order a connection should try them.

    Numeric hosts (read as ``inet_aton`` reads them: ``0x7f.1`` is 127.0.0.1) need no
    lookup. Names are resolved for the families ``AI_ADDRCONFIG`` leaves (unless
    ``addrconfig=False``), sorted as the OS sorts them (RFC 6724) and interleaved by family
    for Happy Eyeballs (RFC 8305). The policy then drops what it refuses; only these
    addresses may be connected to, so a later rebinding of the name cannot redirect the
    connection. Raises a ``ResolveError`` (``AddressRefused`` from the policy).
    """
    numeric = parse_ip_host(host)
    if numeric is not None:
        wanted = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}.get(int(family))
        if wanted is not None and numeric.version != wanted:
            raise NoAnswer(f"{host} is not an IPv{wanted} address", name=host, rdtype="A" if wanted == 4 else "AAAA")
        addresses = [str(numeric)]
    else:
        families = addrconfig_families(family) if addrconfig else None
        if families == ():
            raise NoAnswer("no address of the asked family is configured on this host", name=host)
        if families is not None and len(families) == 1:
            family = families[0]
        found = await resolver.resolve_addresses(host, family, timeout)
        addresses = interleave_families(sort_destinations(dict.fromkeys(found)))
    if policy is not None:
        addresses = policy.filter(host, addresses)
    return addresses


def os_error_for(error: ResolveError) -> OSError:
    """The ``OSError`` code written for ``getaddrinfo`` expects, for a resolution error.

    Policy refusals are ``PermissionError`` (EACCES); lookup failures ``socket.gaierror``
    with the usual ``EAI_*`` code. The message does not repeat the host name (the HTTP
    clients name it themselves); chain the asyncresolve error with ``raise ... from``.
    """
    if isinstance(error, AddressRefused):
        return PermissionError(errno.EACCES, f"address {error.address} refused by policy: {error.reason}")
    if isinstance(error, NXDomain):
        return socket.gaierror(socket.EAI_NONAME, "Name or service not known (NXDOMAIN)")
    if isinstance(error, NoAnswer):
        code = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
        return socket.gaierror(code, "No address associated with hostname")
    if isinstance(error, ResolveTimeout):
        return socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution (timed out)")
    if isinstance(error, ServFail):
        return socket.gaierror(socket.EAI_AGAIN, f"Temporary failure in name resolution ({error.rcode or 'failure'})")
    if isinstance(error, ValueError):  # InvalidName, InvalidQuery
        return socket.gaierror(socket.EAI_NONAME, "Name or service not known (invalid name)")
    return socket.gaierror(socket.EAI_FAIL, f"Non-recoverable failure in name resolution ({type(error).__name__})")
