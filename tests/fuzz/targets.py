"""Fuzz targets: every path a response's bytes take, each a function of raw bytes.

* ``iterative_response`` - the iterative transport's matching and parsing
  (``Transport._parse``, with its fast path and ``sections_hold_together``), then the
  engine's ``Resolution.receive`` at a zone cut; checks that nothing escapes but the
  expected parse errors and that nothing out of bailiwick reaches the infrastructure
  cache or the answer.
* ``cares_response`` - c-ares's parser (``ares_dns_parse``, the one that reads every
  reply) then our conversion (``check_header``, ``to_answer``, ``negative``); only
  ``ResolveError`` may come out, and no record of a name off the CNAME chain.

Used by ``tests/test_fuzz.py`` (hypothesis-driven bytes plus the committed corpus) and by
the atheris entry points ``python tests/fuzz/fuzz_iterative.py`` / ``fuzz_cares.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import struct
from typing import Any

import dns.exception

from asyncresolve.answer import Answer
from asyncresolve.backends import _cares_records as conv
from asyncresolve.backends.iterative.engine import EngineConfig, Resolution, SendQuery
from asyncresolve.backends.iterative.infra import Delegation, Infrastructure, is_subdomain
from asyncresolve.backends.iterative.servers import ServerStats
from asyncresolve.backends.iterative.transport import Transport
from asyncresolve.backends.iterative.wirecheck import sections_hold_together
from asyncresolve.cache import TTLCache
from asyncresolve.errors import NoAnswer, NXDomain, ResolveError

QNAME = "www.example.test."
ZONE = "example.test."
SERVER = ("127.9.2.1", 53)
_PARSE_ERRORS = (dns.exception.DNSException, ValueError, struct.error)


class _Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _resolution() -> tuple[Resolution, Infrastructure, TTLCache]:
    clock = _Clock()
    cache = TTLCache(clock=clock)
    infra = Infrastructure([("127.9.0.1", 53)], cache=cache, port=53, stats=ServerStats(clock=clock))
    infra.store_delegation(Delegation(ZONE, ("ns1.example.test.",), {"ns1.example.test.": (SERVER[0],)}), 3600)
    res = Resolution(QNAME, "A", infra, EngineConfig(qname_minimisation=False, ipv6=False))
    return res, infra, cache


def iterative_response(data: bytes) -> None:
    sections_hold_together(data)  # never raises
    transport = Transport(use_0x20=False)
    question = transport._question(QNAME, "A")
    if len(data) >= 2:
        question.qid = int.from_bytes(data[:2], "big")
    try:
        message = transport._parse(data, question) if len(data) >= 12 else None
    except _PARSE_ERRORS:
        return  # counted as malformed by the transport, the wait goes on
    if message is None:
        return
    res, _infra, cache = _resolution()
    action = res.next_action()
    assert isinstance(action, SendQuery)
    assert action.zone == ZONE
    res.receive(message, action.server)
    res.next_action()  # whatever comes next must be computable
    for key in list(cache._entries):
        if key[:2] == ("iterative", "zone-ns"):
            delegation = cache.get(key)
            if delegation is None:
                continue
            assert is_subdomain(delegation.zone, ZONE), delegation
            for name in delegation.glue:
                assert is_subdomain(name, ZONE), delegation  # glue only from the bailiwick
        elif key[:2] == ("iterative", "addr"):
            raise AssertionError(f"an address was cached from a response: {key}")
    done = res._done
    if done is not None and done.answer is not None:
        answer: Answer = done.answer
        owners = {QNAME} | {link.target for link in answer.cname_chain}
        assert all(r.name in owners for r in answer.records), answer
        assert all(is_subdomain(r.name, ZONE) for r in answer.records), answer


# -- c-ares ---------------------------------------------------------------------------------
_lib = conv._header_lib
_parse = _lib.ares_dns_parse
_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
_parse.restype = ctypes.c_int
_destroy = _lib.ares_dns_record_destroy
_destroy.argtypes = [ctypes.c_void_p]
_destroy.restype = None
_A = conv.TYPE_CODES["A"]


def cares_response(data: bytes) -> None:
    holder = ctypes.c_void_p()
    if _parse(data, len(data), 0, ctypes.byref(holder)) != 0 or not holder.value:
        return  # c-ares drops what it cannot parse
    try:
        dnsrec: Any = conv.ffi.cast("ares_dns_record_t *", holder.value)
        try:
            answer = conv.to_answer(dnsrec, QNAME, "A", _A)
        except ResolveError:
            pass
        else:
            owners = {QNAME} | {link.target for link in answer.cname_chain}
            assert all(r.name in owners for r in answer.records), answer
            assert all(r.ttl < 1 << 31 for r in answer.records), answer
        for kind in (NXDomain, NoAnswer):
            with contextlib.suppress(ResolveError):
                conv.negative(kind, dnsrec, QNAME, "A")
    finally:
        _destroy(holder.value)
