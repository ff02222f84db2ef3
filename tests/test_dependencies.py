"""Contracts with the dependencies, checked on whatever versions are installed (CI runs the
suite on the newest releases pyproject.toml allows and on the lowest, .ci/minimum-versions.txt).

The c-ares backend drives c-ares through pycares's private cffi layer (``pycares._ffi`` and
``pycares._lib``, the ``_sock_state_cb`` trampoline, option bits that pycares does not export):
every private symbol and behaviour it relies on is listed here, read from the backend's own
source so that a new use cannot escape the check. The c-ares query cache bit
(``ARES_OPT_QUERY_CACHE``) is checked by behaviour in test_cares.py
(``qcache_max_ttl`` 0 sends twice, 300 once).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset
import pycares
import pytest

from asyncresolve.backends import cares
from asyncresolve.backends.base import Query

BACKENDS = Path(cares.__file__).resolve().parent
SOURCES = [BACKENDS / "cares.py", BACKENDS / "_cares_records.py"]


def _used(pattern: str) -> set[str]:
    return {name for path in SOURCES for name in re.findall(pattern, path.read_text())}


def test_pycares_private_cffi_layer_is_there() -> None:
    from pycares import _ffi as ffi  # type: ignore[attr-defined]
    from pycares import _lib as lib  # type: ignore[attr-defined]

    lib_names = _used(r"\blib\.(\w+)")
    ffi_names = _used(r"\bffi\.(\w+)")
    assert {"ares_query_dnsrec", "ares_init_options", "_sock_state_cb"} <= lib_names  # the scan works
    assert not [n for n in lib_names if not hasattr(lib, n)], "c-ares functions/constants missing in pycares._lib"
    assert not [n for n in ffi_names if not hasattr(ffi, n)], "cffi features missing in pycares._ffi"


def test_ares_options_fields_that_the_backend_sets() -> None:
    from pycares import _ffi as ffi  # type: ignore[attr-defined]

    fields = dict(ffi.typeof("struct ares_options").fields)
    used = _used(r"\boptions\.(\w+)\s*=")
    assert {"qcache_max_ttl", "sock_state_cb", "timeout"} <= used
    assert not used - set(fields), f"struct ares_options lacks {used - set(fields)}"


def test_callback_signature_and_status_type() -> None:
    from pycares import _ffi as ffi  # type: ignore[attr-defined]

    callback = ffi.callback(cares._CALLBACK_TYPE, lambda *args: None)
    assert ffi.typeof(callback).result.cname == "void"
    expected = [ffi.typeof(t).cname for t in ("void *", "ares_status_t", "size_t", "ares_dns_record_t *")]
    assert [a.cname for a in ffi.typeof(callback).args] == expected


def test_option_bits_not_exported_by_pycares_match_c_ares() -> None:
    """Values from c-ares's ares.h; c-ares must accept them (init fails on an unknown bit)."""
    from pycares import _lib as lib  # type: ignore[attr-defined]

    assert cares._ARES_OPT_QUERY_CACHE == 1 << 21
    assert cares._ARES_OPT_MAXTIMEOUTMS == 1 << 20
    known = {name: getattr(lib, name) for name in dir(lib) if name.startswith("ARES_OPT_")}
    # neither bit may collide with an option pycares does export
    assert cares._ARES_OPT_QUERY_CACHE not in known.values()
    assert cares._ARES_OPT_MAXTIMEOUTMS not in known.values()
    # ares.h numbers its options in sequence: RESOLVCONF 1<<17, HOSTS_FILE, UDP_MAX_QUERIES,
    # MAXTIMEOUTMS 1<<20, QUERY_CACHE 1<<21, EVENT_THREAD 1<<22; the exported neighbours anchor it
    assert known["ARES_OPT_RESOLVCONF"] == 1 << 17
    assert known["ARES_OPT_EVENT_THREAD"] == 1 << 22


@pytest.mark.parametrize("loop_mode", ["sockets", "thread"])
async def test_channel_accepts_the_options_the_backend_sets(dns_server: Any, loop_mode: str) -> None:
    """Every option bit the backend can set (query cache, max timeout, rotate, receive buffer,
    socket callbacks or event thread) is accepted by c-ares, and a query gets through."""
    server = await dns_server({"example.test.": "www 60 IN A 192.0.2.10"})
    ip, port = server.address
    backend = cares.CaresBackend([f"{ip}:{port}"], max_timeout=2.0, qcache_max_ttl=0, rotate=True,
                                 loop_mode=loop_mode)
    try:
        answer = await backend.resolve(Query("www.example.test.", "A", deadline=asyncio.get_running_loop().time() + 5))
        assert answer.addresses == ["192.0.2.10"]
    finally:
        await backend.aclose()


def test_sock_state_trampoline_calls_the_handle_with_fd_and_flags() -> None:
    """``options.sock_state_cb = lib._sock_state_cb`` + ``sock_state_cb_data = ffi.new_handle(f)``:
    pycares's trampoline must call ``f(fd, readable, writable)``."""
    source = inspect.getsource(pycares._sock_state_cb)
    assert "from_handle(data)" in source
    assert re.search(r"\(\s*socket_fd\s*,\s*readable\s*,\s*writable\s*\)", source)


def test_pycares_errno_and_error_type() -> None:
    from pycares import _lib as lib  # type: ignore[attr-defined]

    assert isinstance(cares._strerror(lib.ARES_ETIMEOUT), str)
    assert issubclass(pycares.AresError, Exception)


def test_c_ares_version_is_one_the_backend_supports() -> None:
    major, minor, _ = (int(part) for part in pycares.ARES_VERSION.split("."))
    assert (major, minor) >= (1, 34), pycares.ARES_VERSION


@pytest.mark.parametrize(("rdtype", "text"), [("SRV", "10 5 5060 sip.example.test."), ("MX", "10 mail.example.test.")])
def test_dnspython_writes_srv_targets_uncompressed(rdtype: str, text: str) -> None:
    """RFC 2782: an SRV target is never compressed, and c-ares 1.34 rejects one that is. The
    lab's servers render with dnspython, which compressed it before 2.9: the lower bound of
    dnspython is 2.9. (MX may be compressed, RFC 1035: the check sees compression.)"""
    owner = "_sip._tcp.example.test." if rdtype == "SRV" else "example.test."
    reply = dns.message.make_response(dns.message.make_query(owner, rdtype))
    reply.answer.append(dns.rrset.from_text(owner, 60, "IN", rdtype, text))
    wire = reply.to_wire()
    target_labels = b"\x07example\x04test\x00"
    compressed = wire.count(target_labels) < 2
    assert compressed == (rdtype == "MX")
