import pytest

from asyncresolve import Answer, ARecord, CNAMERecord, NoAnswer, NXDomain, SOARecord, TTLCache
from asyncresolve.cache import Negative

KEY = ("www.example.test.", "A", "IN")


def answer(clock, ttl=60, address="192.0.2.1", name="www.example.test."):
    return Answer(name, "A", [ARecord(name, ttl, address)], "scripted", clock=clock)


def test_positive_entry_counts_down_and_expires(clock):
    cache = TTLCache(clock=clock)
    stored = cache.store_answer(KEY, answer(clock, ttl=60))
    assert stored.ttl == 60
    hit = cache.lookup(KEY)
    assert hit.from_cache
    assert hit.ttl == 60
    assert hit.source == "scripted"
    clock.advance(20.5)
    hit = cache.lookup(KEY)
    assert hit.ttl == 40
    assert [r.ttl for r in hit.records] == [40]
    clock.advance(39.4)
    assert cache.lookup(KEY).ttl == 1
    clock.advance(0.2)
    assert cache.lookup(KEY) is None
    assert len(cache) == 0


def test_ttl_clamps(clock):
    cache = TTLCache(min_ttl=30, max_ttl=100, clock=clock)
    assert cache.store_answer(KEY, answer(clock, ttl=5)).ttl == 30
    other = ("big.example.test.", "A", "IN")
    assert cache.store_answer(other, answer(clock, ttl=10_000, name=other[0])).ttl == 100
    clock.advance(100)
    assert cache.lookup(other) is None
    assert cache.lookup(KEY) is None


def test_zero_ttl_is_not_cached(clock):
    cache = TTLCache(clock=clock)
    cache.store_answer(KEY, answer(clock, ttl=0))
    assert cache.lookup(KEY) is None


def test_negative_entries_use_the_soa_ttl_and_the_default(clock):
    cache = TTLCache(negative_ttl=42, negative_max_ttl=600, clock=clock)
    soa = SOARecord("example.test.", 3600, "ns1.example.test.", "h.example.test.", 1, 2, 3, 4, 300)
    cache.store_negative(KEY, NXDomain(name=KEY[0], rdtype="A", ttl=soa.negative_ttl, soa=soa, source="x"))
    value = cache.lookup(KEY)
    assert isinstance(value, Negative)
    error = value.error()
    assert isinstance(error, NXDomain)
    assert error.ttl == 300
    assert error.soa == soa
    assert error.from_cache
    assert error.cname_chain == ()
    assert error.canonical_name is None
    chain = (CNAMERecord("alias.test.", 60, "gone.example.test."),)
    cache.store_negative(("alias.test.", "A", "IN"), NXDomain(name="alias.test.", rdtype="A", ttl=30,
                                                              cname_chain=chain, canonical_name="gone.example.test."))
    again = cache.lookup(("alias.test.", "A", "IN")).error()
    assert again.cname_chain == chain
    assert again.canonical_name == "gone.example.test."
    clock.advance(299)
    assert cache.lookup(KEY).error().ttl == 1
    clock.advance(1)
    assert cache.lookup(KEY) is None
    # no SOA known: the configured default
    cache.store_negative(KEY, NoAnswer(name=KEY[0], rdtype="A"))
    assert cache.lookup(KEY).error().ttl == 42
    # clamp
    cache.store_negative(KEY, NoAnswer(name=KEY[0], rdtype="A", ttl=86_400))
    assert isinstance(cache.lookup(KEY).error(), NoAnswer)
    assert cache.lookup(KEY).error().ttl == 600


def test_lru_bound_evicts_least_recently_used(clock):
    cache = TTLCache(max_entries=3, clock=clock)
    keys = [(f"n{i}.test.", "A", "IN") for i in range(4)]
    for key in keys[:3]:
        cache.store_answer(key, answer(clock, name=key[0]))
    assert cache.lookup(keys[0]) is not None  # touch n0: n1 is now the oldest
    cache.store_answer(keys[3], answer(clock, name=keys[3][0]))
    assert len(cache) == 3
    assert cache.evictions == 1
    assert cache.lookup(keys[1]) is None
    assert all(cache.lookup(k) is not None for k in (keys[0], keys[2], keys[3]))


def test_serve_stale_serves_expired_entry_and_asks_for_one_refresh(clock):
    cache = TTLCache(serve_stale=3600, stale_answer_ttl=30, clock=clock)
    cache.store_answer(KEY, answer(clock, ttl=10))
    refreshes = []
    clock.advance(11)
    stale = cache.lookup(KEY, refreshes.append)
    assert stale.records[0].address == "192.0.2.1"
    assert stale.ttl == 30
    assert cache.lookup(KEY, refreshes.append) is not None
    assert refreshes == [KEY]  # one refresh, however many hits
    assert cache.stale_served == 2
    cache.refresh_failed(KEY)
    cache.lookup(KEY, refreshes.append)
    assert refreshes == [KEY, KEY]
    clock.advance(3600)
    assert cache.lookup(KEY, refreshes.append) is None
    # without a refresher (a plain get) stale entries are not served
    cache.store_answer(KEY, answer(clock, ttl=10))
    clock.advance(11)
    assert cache.lookup(KEY) is None
    assert cache.get(KEY) is None


def test_serve_stale_disabled_by_default(clock):
    cache = TTLCache(clock=clock)
    cache.store_answer(KEY, answer(clock, ttl=10))
    clock.advance(10)
    assert cache.lookup(KEY, lambda key: None) is None


def test_prefetch_when_little_ttl_remains(clock):
    cache = TTLCache(prefetch=True, prefetch_fraction=0.1, clock=clock)
    cache.store_answer(KEY, answer(clock, ttl=100))
    refreshes = []
    clock.advance(89)
    assert cache.lookup(KEY, refreshes.append).ttl == 11
    assert refreshes == []
    clock.advance(2)
    assert cache.lookup(KEY, refreshes.append).ttl == 9
    assert cache.lookup(KEY, refreshes.append).ttl == 9
    assert refreshes == [KEY]
    assert cache.prefetches == 1
    # short TTLs are never prefetched
    short = ("short.test.", "A", "IN")
    cache.store_answer(short, answer(clock, ttl=5, name=short[0]))
    clock.advance(4.9)
    cache.lookup(short, refreshes.append)
    assert refreshes == [KEY]


def test_generic_infrastructure_values(clock):
    cache = TTLCache(max_ttl=1000, clock=clock)
    cache.put(("iterative", "zone-ns", "test."), {"ns": ["a.test."]}, ttl=5000)
    assert cache.get(("iterative", "zone-ns", "test.")) == {"ns": ["a.test."]}
    assert cache.remaining_ttl(("iterative", "zone-ns", "test.")) == 1000
    clock.advance(1000)
    assert cache.get(("iterative", "zone-ns", "test.")) is None
    assert ("iterative", "zone-ns", "test.") not in cache


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_entries": 0}, "max_entries must be at least 1"),
        ({"min_ttl": 10, "max_ttl": 5}, "need 0 <= min_ttl <= max_ttl"),
        ({"negative_ttl": -1}, "TTLs must not be negative"),
        ({"prefetch_fraction": 1.5}, "prefetch_fraction must be between 0 and 1"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TTLCache(**kwargs)


def test_answer_is_immutable(clock):
    a = answer(clock)
    with pytest.raises(AttributeError):
        a.source = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.records[0].ttl = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="needs at least one record"):
        Answer("x.", "A", [], "s")
