"""The result cache's eviction rule: highest tier first, least recently used within a tier, within both limits."""
import numpy as np

import tj
from tj.cache import ResultCache
from tj.results import Results


def mb(n: float) -> np.ndarray:
    return np.zeros(int(n * 1e6), dtype=np.uint8)


def test_cheap_tiers_survive_bulky_results():
    cache = ResultCache(max_entries=100, max_bytes=int(10e6), tier=lambda key: key[0])
    cache.put((0, "train"), mb(0.1))
    cache.put((1, "J lecture"), mb(4))
    for i in range(10):  # 30 MB of tier-2 results through a 10 MB cache
        cache.put((2, f"bulky {i}"), mb(3))
    assert cache.peek((0, "train")) is not None and cache.peek((1, "J lecture")) is not None
    assert cache.peek((2, "bulky 9")) is not None and cache.peek((2, "bulky 0")) is None
    assert cache.bytes <= 10e6 and cache.stats.evicted == 9


def test_least_recently_used_first_within_a_tier_and_the_entry_limit():
    cache = ResultCache(max_entries=3, max_bytes=1 << 40, tier=lambda key: 0)
    for k in "abc":
        cache.put(k, 1.0)
    cache.get_or_compute("a", lambda: 0 / 0)  # a hit: 'a' becomes the most recently used
    cache.put("d", 1.0)
    assert cache.peek("b") is None and all(cache.peek(k) is not None for k in "acd")


def test_a_result_bigger_than_the_cache_is_kept_alone_rather_than_lost():
    cache = ResultCache(max_entries=10, max_bytes=int(1e6), tier=lambda key: 0)
    cache.put("small", mb(0.5))
    cache.put("huge", mb(2))
    assert cache.peek("huge") is not None and cache.peek("small") is None


def test_the_apps_tiers_keep_what_every_page_needs():
    lecture, paper = tj.preset("lecture"), tj.preset("paper")
    custom = lecture.replace(seed=7)
    tier = Results.tier
    assert tier(("train", custom)) == tier(("estimate", paper)) == 0
    assert tier(("jacobian", lecture)) == tier(("spectrum", paper)) == 1
    assert tier(("jacobian", custom)) == tier(("bulk", lecture)) == 2
    assert tier(("kl", lecture, 1.0)) == 2
