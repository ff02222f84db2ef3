"""A hostile root server for tests/test_iterative_hostile_lab.py (run as a child process):
``python tests/hostile_root.py N`` answers ``www.big.test.`` with a referral to N glueless
name servers (truncated over UDP, whole over TCP: 62 KB for N = 3,000), REFUSED to anything
else; prints ``host port`` once listening and exits when its standard input closes.
Replies are rendered once by dnspython; only the ID and question bytes change per query."""

from __future__ import annotations

import contextlib
import select
import socket
import sys

import dns.flags
import dns.message
import dns.rrset


def big_referral(ns_count: int) -> tuple[bytes, bytes]:
    """(UDP reply with TC set, full TCP reply) of a root server referring www.big.test. to
    ``ns_count`` glueless name servers, rendered once by dnspython."""
    query = dns.message.make_query("www.big.test.", "A")
    full = dns.message.make_response(query)
    full.flags &= ~dns.flags.RD
    full.authority.append(dns.rrset.from_text_list(
        "big.test.", 3600, "IN", "NS", [f"ns{i}.nowhere.test." for i in range(ns_count)]
    ))
    truncated = dns.message.make_response(query)
    truncated.flags |= dns.flags.TC
    return truncated.to_wire(), full.to_wire()


def _reply(template: bytes, query: bytes) -> bytes:
    """``template`` with the query's ID and question bytes (its 0x20 case included)."""
    end = 12
    while query[end] != 0:
        end += 1 + query[end]
    end += 5
    return query[:2] + template[2:12] + query[12:end] + template[end:]


def _refused(query: bytes) -> bytes:
    return query[:2] + bytes([0x80 | (query[2] & 0x79), 0x05]) + query[4:]


def serve(ns_count: int) -> None:
    udp_reply, tcp_reply = big_referral(ns_count)
    while True:  # a port free for both UDP and TCP
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", port))
            break
        except OSError:
            udp.close()
            tcp.close()
    tcp.listen(16)
    print("127.0.0.1", port, flush=True)
    while True:
        ready, _, _ = select.select([udp, tcp, sys.stdin], [], [], 60)
        if sys.stdin in ready or not ready:
            return
        if udp in ready:
            query, addr = udp.recvfrom(4096)
            big = b"\x03big\x04test\x00" in query.lower()
            udp.sendto(_reply(udp_reply, query) if big else _refused(query), addr)
        if tcp in ready:
            client, _ = tcp.accept()
            with client:
                client.settimeout(5)
                with contextlib.suppress(OSError):
                    size = int.from_bytes(client.recv(2), "big")
                    query = b""
                    while len(query) < size:
                        query += client.recv(size - len(query))
                    answer = _reply(tcp_reply, query)
                    client.sendall(len(answer).to_bytes(2, "big") + answer)




if __name__ == "__main__":
    serve(int(sys.argv[1]))
