"""The zones and questions the native codec and backend are checked on (every shape of reply)."""

LAB_ZONES = {
    "example.test.": """
        @     3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
        @     3600 IN NS  ns1
        ns1   3600 IN A   127.0.0.1
        www   60   IN A   192.0.2.10
        www   60   IN A   192.0.2.11
        www   60   IN AAAA 2001:db8::10
        alias 120  IN CNAME www
        far   120  IN CNAME www.other.test.
        mail  300  IN MX  10 mx1
        mx1   300  IN A   192.0.2.25
        txt   300  IN TXT "v=spf1 -all" "second"
        srv   300  IN SRV 0 5 443 www
        big   300  IN TXT "{big}"
        *.wild 300 IN A 192.0.2.99
        sub   3600 IN NS ns.sub
        ns.sub 3600 IN A 127.0.0.9
        dn    300  IN DNAME other.test.
        caa   300  IN CAA 0 issue "ca.example"
    """.replace("{big}", "x" * 250),
    "other.test.": "www 120 IN A 192.0.2.200",
}
LAB_QUESTIONS = [(name, rdtype) for name in (
    "example.test.", "www.example.test.", "alias.example.test.", "far.example.test.", "mail.example.test.",
    "txt.example.test.", "srv.example.test.", "big.example.test.", "a.wild.example.test.",
    "x.sub.example.test.", "y.dn.example.test.", "caa.example.test.", "missing.example.test.",
    "www.other.test.", "nowhere.invalid.", "WwW.ExAmPlE.tEsT.",
) for rdtype in ("A", "AAAA", "MX", "TXT", "SRV", "NS", "SOA", "CNAME", "CAA", "DS")]
