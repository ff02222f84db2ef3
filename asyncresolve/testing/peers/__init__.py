"""Real DNS peers for the lab: NSD (authoritative) and unbound (recursive).

These are servers nobody in this project wrote, installed from Debian packages
(``apt-get install nsd unbound``).  They let tests check the lab's own
authoritative server and the project's resolvers against real implementations:

* :class:`NSD` serves a ``{origin: zone text}`` mapping on one loopback
  address, authoritatively, with rate limiting off.
* :class:`Unbound` is a recursive resolver whose root hints are the lab's root
  servers, with DNSSEC validation, trust-anchor updates and forwarders off, and
  the special-use names (``test.``, ``invalid.``, ``127.in-addr.arpa.`` ...)
  that unbound answers locally by default handed back to the lab.

Both run as non-daemon child processes (``nsd -d``, ``unbound -d``) in a
private temporary directory that holds every runtime file, and are stopped by
pid (their process group) on :meth:`~_Peer.stop`, on leaving a ``with`` /
``async with`` block, and at interpreter exit.  Readiness is awaited by really
querying the server; a server that fails to start raises
:class:`PeerStartError` carrying its log.

Every address used is in 127.0.0.0/8 (or ``::1``): no packet leaves the host.

Example::

    async with NSD({"example.test.": ZONE}, address="127.54.9.8", port=53) as nsd:
        ...  # query nsd.endpoint == (nsd.address, nsd.port)
    async with Unbound(root_hints=lab.root_hints) as ub:  # random 127.x, port 53
        ...  # recursive queries to ub.endpoint
        await ub.restart()  # cold cache: new process, same address and port
        await ub.flush()    # or: empty the caches via unbound-control reload

Sync code uses ``with`` or :meth:`~_Peer.start` / :meth:`~_Peer.stop`
(and ``restart_sync()`` / ``flush_sync()``).  ``port=None`` picks a free high
port (no root needed); port 53 needs root, and is what unbound's *upstream*
side always uses: referrals carry no ports, so the lab must run on port 53.

In tests, :func:`require_peer` skips when a peer binary is missing, except
under CI (``CI`` set to a true value), where it fails: CI must install them.
"""

from ._common import (
    INSTALL_HINTS,
    PeerError,
    PeerMissing,
    PeerStartError,
    find_peer_binary,
    free_port,
    peer_available,
    port_is_free,
    random_loopback_address,
    random_loopback_block,
    require_peer,
    require_root,
)
from .nsd import NSD
from .redis import RedisServer
from .unbound import UNBOUND_DEFAULT_LOCAL_ZONES, Unbound, root_hints_text

__all__ = [
    "INSTALL_HINTS",
    "NSD",
    "UNBOUND_DEFAULT_LOCAL_ZONES",
    "PeerError",
    "PeerMissing",
    "PeerStartError",
    "RedisServer",
    "Unbound",
    "find_peer_binary",
    "free_port",
    "peer_available",
    "port_is_free",
    "random_loopback_address",
    "random_loopback_block",
    "require_peer",
    "require_root",
    "root_hints_text",
]
