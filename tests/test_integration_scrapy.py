"""Scrapy with asyncresolve as its resolver: a real crawl (CrawlerProcess in a subprocess,
asyncio reactor) of a small local site by lab names, IPv4 and IPv6, with an NXDOMAIN link
reported as a DNS error, negative caching, and the SSRF guard."""

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from asyncresolve.integrations.scrapy import AsyncResolveResolver, ResolutionFailed

SITE_ZONES = {
    "site.test.": """
        @     3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300
        @     3600 IN NS  ns1
        ns1   3600 IN A   127.0.0.1
        www   300  IN A   127.0.0.1
        blog  300  IN A   127.0.0.1
        v6    300  IN AAAA ::1
        dual  300  IN A   127.0.0.1
        dual  300  IN AAAA ::1
        inner 300  IN A   127.0.0.9
    """,
}

CRAWL_SCRIPT = r'''
import json
import sys

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import CannotResolveHostError
from twisted.internet.error import DNSLookupError

from asyncresolve import Resolver
from asyncresolve.backends import CaresBackend
from asyncresolve.policy import AddressPolicy

stub, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
results = {"pages": [], "dns_errors": [], "other_errors": []}
resolvers = []


def make_resolver():
    resolvers.append(Resolver([CaresBackend([stub])]))
    return resolvers[-1]


class Site(scrapy.Spider):
    name = "site"

    async def start(self):
        yield scrapy.Request(f"http://www.site.test:{port}/", errback=self.failed)

    def parse(self, response):
        results["pages"].append({"url": response.url, "ip": str(response.ip_address), "body": response.text})
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse, errback=self.failed)

    def failed(self, failure):
        kind = "dns_errors" if failure.check(DNSLookupError, CannotResolveHostError) else "other_errors"
        results[kind].append({"url": failure.request.url, "type": type(failure.value).__name__,
                              "message": str(failure.value)})


process = CrawlerProcess(settings={
    "TWISTED_DNS_RESOLVER": "asyncresolve.integrations.scrapy.AsyncResolveResolver",
    "ASYNCRESOLVE_RESOLVER": make_resolver,
    "ASYNCRESOLVE_POLICY": AddressPolicy(allow=["127.0.0.1/32", "::1/128"]),
    "DNS_TIMEOUT": 5,
    "ROBOTSTXT_OBEY": False,
    "RETRY_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "DOWNLOAD_TIMEOUT": 10,
    "LOG_LEVEL": "INFO",
})
process.crawl(Site)
process.start()
results["cache_hits"] = resolvers[0].stats.cache_hits
with open(out, "w") as handle:
    json.dump(results, handle)
'''

PAGES = {
    ("www.site.test", "/"): ["/about", "http://blog.site.test:{port}/post", "http://v6.site.test:{port}/",
                             "http://gone.site.test:{port}/x", "http://inner.site.test:{port}/",
                             "http://0x7f.0.0.9:{port}/", "http://127.0.0.9:{port}/"],
    ("www.site.test", "/about"): ["http://gone.site.test:{port}/y", "http://dual.site.test:{port}/"],
}


class SiteHandler(BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):
        host, _, port = self.headers["Host"].rpartition(":")
        type(self).hits.append((host, self.path, self.connection.getsockname()[0]))
        links = PAGES.get((host, self.path), [])
        body = "".join(f'<a href="{link.format(port=port)}">link</a>\n' for link in links)
        data = f"<html><body><p>{host}{self.path}</p>{body}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture
def site():
    SiteHandler.hits = []
    v4 = ThreadingHTTPServer(("127.0.0.1", 0), SiteHandler)
    port = v4.server_address[1]
    v6 = V6Server(("::1", port), SiteHandler)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (v4, v6)]
    for thread in threads:
        thread.start()
    yield port
    for server in (v4, v6):
        server.shutdown()
        server.server_close()


def test_scrapy_crawls_a_local_site_by_lab_names(dns_lab_in_thread, site, tmp_path):
    lab = dns_lab_in_thread(SITE_ZONES)
    script = tmp_path / "crawl.py"
    script.write_text(CRAWL_SCRIPT)
    out = tmp_path / "results.json"
    stub = "{}:{}".format(*lab.stub_server)
    done = subprocess.run([sys.executable, str(script), stub, str(site), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    pages = {page["url"]: page["ip"] for page in results["pages"]}
    base = f"http://{{}}.site.test:{site}/"
    assert pages == {
        base.format("www"): "127.0.0.1",
        base.format("www") + "about": "127.0.0.1",
        base.format("blog") + "post": "127.0.0.1",
        base.format("v6"): "::1",  # an IPv6-only name: Scrapy's default resolver asks for IPv4 only
        base.format("dual"): "::1",  # IPv6 first, as the OS orders ::1 and 127.0.0.1
    }, results
    dns_errors = {error["url"]: error for error in results["dns_errors"]}
    assert set(dns_errors) == {base.format("gone") + "x", base.format("gone") + "y", base.format("inner"),
                               f"http://0x7f.0.0.9:{site}/", f"http://127.0.0.9:{site}/"}, results
    assert all(e["type"] == "CannotResolveHostError" for e in dns_errors.values()), dns_errors
    assert results["other_errors"] == []
    # the policy refusals are logged with their reason
    assert "refused inner.site.test: address 127.0.0.9 of inner.site.test refused by policy: loopback" in done.stderr
    assert "refused 0x7f.0.0.9: address 127.0.0.9 of 0x7f.0.0.9 refused" in done.stderr
    assert "refused 127.0.0.9: address 127.0.0.9 refused by policy: loopback" in done.stderr
    # nothing reached an address the policy refused
    assert all(server in ("127.0.0.1", "::1") for _, _, server in SiteHandler.hits)
    # positive and negative answers cached with their TTLs: one query per name and type
    for name in ("www.site.test", "gone.site.test"):
        asked = [q.type for q in lab.queries_for(name)]
        assert sorted(asked) == ["A", "AAAA"], (name, asked)
    assert results["cache_hits"] >= 2


class FakeReactor:
    """What the resolver needs of Twisted's asyncio reactor: its event loop."""

    def __init__(self, loop):
        self._asyncioEventloop = loop


class Receiver:
    def __init__(self):
        self.addresses = []
        self.complete = threading.Event()

    def resolutionBegan(self, resolution):
        self.resolution = resolution

    def addressResolved(self, address):
        self.addresses.append(address)

    def resolutionComplete(self):
        self.complete.set()


async def wait_for(receiver):
    import asyncio

    assert await asyncio.to_thread(receiver.complete.wait, 5)  # the reactor's loop runs meanwhile


async def test_dns_timeout_from_settings_bounds_each_lookup(dns_lab):
    import asyncio

    from scrapy.settings import Settings

    lab = await dns_lab(SITE_ZONES)
    lab.stub.faults.delay = 10
    crawler = type("Crawler", (), {})()
    crawler.settings = Settings({"DNS_TIMEOUT": 0.5, "ASYNCRESOLVE_NAMESERVERS": ["{}:{}".format(*lab.stub_server)]})
    resolver = AsyncResolveResolver.from_crawler(crawler, FakeReactor(asyncio.get_running_loop()))
    assert resolver.timeout == 0.5
    assert resolver._owns_resolver
    receiver = Receiver()
    started = time.monotonic()
    resolver.resolveHostName(receiver, "www.site.test", 80)
    await asyncio.wait_for(wait_for(receiver), 5)
    assert receiver.addresses == []
    assert time.monotonic() - started < 3
    with pytest.raises(ResolutionFailed) as info:
        await resolver.getHostByName("www.site.test").asFuture(asyncio.get_running_loop())
    assert isinstance(info.value, socket.gaierror)
    assert info.value.__cause__.errno == socket.EAI_AGAIN
    lab.stub.faults.delay = 0
    receiver = Receiver()
    resolver.resolveHostName(receiver, "dual.site.test", 443)
    await asyncio.wait_for(wait_for(receiver), 5)
    assert [(a.type, a.host, a.port) for a in receiver.addresses] == [("TCP", "::1", 443), ("TCP", "127.0.0.1", 443)]
    await resolver._close().asFuture(asyncio.get_running_loop())
    assert resolver.resolver._closed


def test_a_resolver_given_in_the_settings_stays_open_and_a_built_one_is_closed_at_shutdown():
    from scrapy.settings import Settings

    from asyncresolve import Resolver

    given = Resolver()
    crawler = type("Crawler", (), {"settings": Settings({"ASYNCRESOLVE_RESOLVER": given})})()
    assert AsyncResolveResolver.from_crawler(crawler, FakeReactor(None))._owns_resolver is False
    crawler.settings = Settings({"ASYNCRESOLVE_RESOLVER": Resolver})
    built = AsyncResolveResolver.from_crawler(crawler, FakeReactor(None))
    assert built._owns_resolver
    assert built.resolver is not given
    crawler.settings = Settings({"ASYNCRESOLVE_RESOLVER": "builtins.object"})
    with pytest.raises(TypeError, match="must give a Resolver"):
        AsyncResolveResolver.from_crawler(crawler, FakeReactor(None))
