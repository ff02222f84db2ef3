"""Peer binaries, the CI rule for missing ones, and loopback addresses and ports."""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import socket

#: Debian package that provides each binary the peers use.
INSTALL_HINTS: dict[str, str] = {
    "nsd": "nsd",
    "nsd-checkconf": "nsd",
    "nsd-checkzone": "nsd",
    "unbound": "unbound",
    "unbound-checkconf": "unbound",
    "unbound-control": "unbound",
}

#: Directories searched besides ``$PATH``: Debian installs the daemons in
#: ``/usr/sbin``, which is not on a normal user's ``PATH``.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")



class PeerError(RuntimeError):
    """Base class of the errors this module raises."""


class PeerMissing(PeerError):
    """A peer's binary is not installed; the message says what to install."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        package = INSTALL_HINTS.get(binary, binary)
        self.package = package
        super().__init__(
            f"{binary!r} not found on PATH or in {', '.join(_EXTRA_BIN_DIRS)}; "
            f"install it with: apt-get install {package}"
        )


class PeerStartError(PeerError):
    """A peer failed its config check or did not become ready; includes its log."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        text = message
        if log.strip():
            text += "\n--- peer output ---\n" + log.rstrip()
        super().__init__(text)


# --------------------------------------------------------------------------
# Binaries and pytest helper
# --------------------------------------------------------------------------


def find_peer_binary(name: str) -> str:
    """Return the absolute path of binary *name*, or raise :class:`PeerMissing`.

    Looks on ``$PATH`` first, then in the sbin directories Debian uses.
    """
    found = shutil.which(name)
    if found:
        return found
    for directory in _EXTRA_BIN_DIRS:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PeerMissing(name)


def peer_available(name: str) -> bool:
    """True when binary *name* can be found (see :func:`find_peer_binary`)."""
    try:
        find_peer_binary(name)
    except PeerMissing:
        return False
    return True


def _in_ci() -> bool:
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def require_peer(*names: str) -> None:
    """In a test, demand the peer binaries *names* (default: nsd and unbound).

    When one is missing this calls ``pytest.fail`` under CI (the ``CI``
    environment variable is set to a true value): CI installs the packages and
    must fail loudly rather than skip.  Elsewhere it calls ``pytest.skip``.
    Peer daemons also need root for port 53; that is checked by the peers.
    """
    import pytest  # only needed by tests

    missing: list[PeerMissing] = []
    for name in names or ("nsd", "unbound"):
        try:
            find_peer_binary(name)
        except PeerMissing as exc:
            missing.append(exc)
    if not missing:
        return
    message = "; ".join(str(exc) for exc in missing)
    if _in_ci():
        pytest.fail(f"peer missing under CI: {message}", pytrace=False)
    pytest.skip(f"peer missing: {message}")


# --------------------------------------------------------------------------
# Addresses and ports
# --------------------------------------------------------------------------


def require_root(reason: str = "binding port 53") -> None:
    """In a test, demand root (for port 53, mount namespaces): fail under CI, skip elsewhere."""
    import pytest  # only needed by tests

    if os.geteuid() == 0:
        return
    if _in_ci():
        pytest.fail(f"CI must run as root: {reason}", pytrace=False)
    pytest.skip(f"needs root: {reason}")


def random_loopback_block(rng: random.Random | None = None) -> str:
    """Return a random ``"127.X.Y."`` prefix, avoiding ``127.0.0.`` and 127.255.

    Parallel test runs each pick their own block so that they do not collide
    on port 53.
    """
    rng = rng or random.SystemRandom()
    return f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}."


def random_loopback_address(rng: random.Random | None = None) -> str:
    """Return a random 127.X.Y.Z address (Z in 1..254) free on port 53."""
    rng = rng or random.SystemRandom()
    for _ in range(64):
        address = random_loopback_block(rng) + str(rng.randint(1, 254))
        if port_is_free(address, 53):
            return address
    raise PeerError("could not find a free random 127.x.y.z address")  # pragma: no cover


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _check_loopback(address: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"peers only use loopback addresses, not {address!r}")


def port_is_free(address: str, port: int) -> bool:
    """True when both UDP and TCP *port* can be bound on *address* right now."""
    family = _family(address)
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def free_port(address: str = "127.0.0.1") -> int:
    """Return a port that is free for both UDP and TCP on *address*.

    The kernel picks a UDP port by binding to port 0; the same port is then
    checked on TCP.  (There is a window between this check and the peer's own
    bind; the random 127.x addresses make a collision unlikely.)
    """
    family = _family(address)
    for _ in range(100):
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
            port = int(sock.getsockname()[1])
        if port_is_free(address, port):
            return port
    raise PeerError(f"no free UDP+TCP port on {address}")  # pragma: no cover


def _fmt_endpoint(address: str, port: int) -> str:
    return f"{address}@{port}"


