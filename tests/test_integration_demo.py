"""The demo's crawler section: pages fetched by lab names, lookups saved, names refused."""

import re

from asyncresolve.demo import crawler_tour


async def test_crawler_tour_fetches_pages_saves_lookups_and_refuses_internal_names(capsys):
    await crawler_tour(pages=30)
    out = capsys.readouterr().out
    assert re.search(r"GET http://www\.crawl\.test:\d+/0 -> 200 'page /0 of www\.crawl\.test:\d+'", out)
    assert re.search(r"GET http://shop\.crawl\.test:\d+/2 -> 200", out)  # through a CNAME
    saved = re.search(r"asked (\d+) lookups .* the lab received (\d+) queries, (\d+) lookups saved", out)
    assert saved, out
    asked, received, saved_count = map(int, saved.groups())
    assert asked == 60
    assert received == 6
    assert saved_count == 54
    assert "address 127.0.0.53 of admin.crawl.test refused by policy: loopback" in out
    assert "address 127.0.0.54 of intranet.crawl.test refused by policy: loopback" in out
    assert "address 127.0.0.53 of 0x7f.0.0.53 refused by policy: loopback" in out
    assert "loopback (127.0.0.53 embedded)" in out
    assert "address 127.0.0.53 of 2130706485 refused by policy: loopback" in out
    assert "address 169.254.169.254 of metadata.crawl.test refused by policy: link-local" in out
    assert "address 10.0.0.1 of db.crawl.test refused by policy: private" in out
    assert "not refused" not in out
