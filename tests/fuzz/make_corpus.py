"""Write the seed corpus (``python tests/fuzz/make_corpus.py``): honest replies to
``www.example.test. A`` from ``example.test.``'s server, the lab's 34 malformed variants
and its dishonest replies. The same seeds serve both targets."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from asyncresolve.testing.malformed import FORGED, MALFORMED

HERE = Path(__file__).resolve().parent
SOA = "example.test. 600 IN SOA ns1.example.test. h.example.test. 1 7200 900 1209600 120"


def response(*, answer: tuple[str, ...] = (), authority: tuple[str, ...] = (), additional: tuple[str, ...] = (),
             aa: bool = True, rcode: int = 0, tc: bool = False) -> bytes:
    query = dns.message.make_query("www.example.test.", "A")
    message = dns.message.make_response(query)
    message.flags &= ~dns.flags.RD
    if aa:
        message.flags |= dns.flags.AA
    if tc:
        message.flags |= dns.flags.TC
    message.set_rcode(rcode)  # type: ignore[arg-type]
    for section, lines in ((message.answer, answer), (message.authority, authority),
                           (message.additional, additional)):
        for line in lines:
            owner, ttl, rdclass, rdtype, rdata = line.split(None, 4)
            section.append(dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, rdata))
    return message.to_wire()


def seeds() -> dict[str, bytes]:
    out = {
        "answer": response(answer=("www.example.test. 300 IN A 192.0.2.1",),
                           authority=("example.test. 300 IN NS ns1.example.test.",),
                           additional=("ns1.example.test. 300 IN A 127.9.2.1",)),
        "cname-chain": response(answer=("www.example.test. 300 IN CNAME a.example.test.",
                                        "a.example.test. 300 IN A 192.0.2.2")),
        "dname": response(answer=("example.test. 300 IN DNAME other.test.",
                                  "www.example.test. 300 IN CNAME www.other.test.")),
        "referral": response(aa=False, authority=("sub.example.test. 86400 IN NS ns.sub.example.test.",
                                                  "sub.example.test. 86400 IN NS ns.elsewhere.test."),
                             additional=("ns.sub.example.test. 86400 IN A 127.9.3.1",
                                         "ns.elsewhere.test. 86400 IN A 127.66.6.6")),
        "referral-sideways": response(aa=False, authority=("other.test. 86400 IN NS ns.other.test.",),
                                      additional=("ns.other.test. 86400 IN A 127.66.6.7",)),
        "nxdomain": response(rcode=dns.rcode.NXDOMAIN, authority=(SOA,)),
        "nodata": response(authority=(SOA,)),
        "servfail": response(rcode=dns.rcode.SERVFAIL),
        "truncated": response(tc=True),
        "poison": response(answer=("www.example.test. 300 IN A 192.0.2.1",),
                           additional=("www.victim.test. 300 IN A 198.51.100.66",)),
    }
    query = dns.message.make_query("www.example.test.", "A")
    query.id = int.from_bytes(out["answer"][:2], "big")
    wire = query.to_wire()
    for name, mangle in MALFORMED.items():
        out[f"malformed-{name}"] = mangle(wire, out["answer"], random.Random(name))
    for name, forge in FORGED.items():
        forged = forge(query)
        out[f"forged-{name}"] = forged if isinstance(forged, bytes) else forged.to_wire()
    return out


def main() -> None:
    for target in ("iterative", "cares"):
        folder = HERE / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds().items():
            digest = hashlib.sha1(data).hexdigest()[:10]
            (folder / f"{name}-{digest}").write_bytes(data)


if __name__ == "__main__":
    main()
