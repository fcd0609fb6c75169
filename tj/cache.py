"""A thread-safe result cache: each key computed once (callers of the same key wait), bounded in entries and bytes.

Eviction rule: when a new result pushes the cache over its entry or byte limit, results are dropped from the
highest tier first (tier(key): 0 = cheap and essential, e.g. training runs; higher = bulkier, cheaper to lose),
least recently used first within a tier, until it fits. The result just stored is never dropped by its own put."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


def nbytes(value) -> int:
    """Bytes held by tensors and arrays reachable through dataclass fields, tuples, lists and dicts."""
    seen, total, stack = set(), 0, [value]
    while stack:
        v = stack.pop()
        if id(v) in seen or v is None or isinstance(v, (int, float, str, bool)):
            continue
        seen.add(id(v))
        if hasattr(v, "element_size") and hasattr(v, "numel"):
            total += v.element_size() * v.numel()
        elif hasattr(v, "nbytes") and hasattr(v, "dtype"):
            total += int(v.nbytes)
        elif isinstance(v, dict):
            stack += list(v.values())
        elif isinstance(v, (list, tuple)):
            stack += list(v)
        elif hasattr(v, "__dataclass_fields__"):
            stack += [getattr(v, f) for f in v.__dataclass_fields__]
    return total


@dataclass
class Stats:
    computed: int = 0
    hits: int = 0
    evicted: int = 0


class ResultCache:
    """Tiered LRU over (kind, config) keys; a key being computed blocks other callers of it, not of other keys."""

    def __init__(self, max_entries: int = 16, max_bytes: int = 1 << 30, tier=lambda key: 0):
        self.max_entries, self.max_bytes, self.tier = max_entries, max_bytes, tier
        self._items: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._locks: dict = {}
        self._lock = threading.Lock()
        self.stats = Stats()

    def peek(self, key):
        """The cached value or None, without computing."""
        with self._lock:
            return self._items.get(key)

    def get_or_compute(self, key, compute):
        """The value for key, computing it at most once at a time across threads."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.stats.hits += 1
                return self._items[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._items:  # another thread finished it while we waited
                    self._items.move_to_end(key)
                    self.stats.hits += 1
                    return self._items[key]
            value = compute()
            self.put(key, value)
            with self._lock:
                self.stats.computed += 1
                self._locks.pop(key, None)
            return value

    def is_computing(self, key) -> bool:
        with self._lock:
            lock = self._locks.get(key)
        return lock is not None and lock.locked()

    def put(self, key, value) -> None:
        size = nbytes(value)
        with self._lock:
            self._items[key] = value
            self._sizes[key] = size
            self._items.move_to_end(key)
            while len(self._items) > 1 and (len(self._items) > self.max_entries
                                            or sum(self._sizes.values()) > self.max_bytes):
                old = self._victim(exclude=key)
                del self._items[old]
                self._sizes.pop(old)
                self.stats.evicted += 1

    def _victim(self, exclude):
        """The key to drop: highest tier, then least recently used (the items are kept in use order)."""
        order = [k for k in self._items if k != exclude]
        return max(enumerate(order), key=lambda ik: (self.tier(ik[1]), -ik[0]))[1]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._sizes.clear()

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())
