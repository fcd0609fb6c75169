"""Where results are kept: a thread-safe memory cache and a folder on disk, both keyed by (kind, config…).

Memory: each key computed once (callers of the same key wait), bounded in entries and bytes. When a new result
pushes it over a limit, results are dropped from the highest tier first (tier(key): 0 = cheap and essential,
e.g. training runs; higher = bulkier, cheaper to lose), least recently used first within a tier, until it
fits; the result just stored is never dropped by its own put.
Disk: any result as .npz, written atomically, no pickle, the key checked on reading, tj types only."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import re
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


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


def key_text(key: tuple) -> str:
    """A canonical text for a cache key: (kind, Experiment, extra…) of str, numbers, tuples and configs."""
    def plain(v):
        if hasattr(v, "to_json"):
            return {"experiment": json.loads(v.to_json())}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, (np.integer, np.floating)):
            return v.item()
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        raise TypeError(f"cannot store a key part of type {type(v).__name__}")
    return json.dumps(plain(key), sort_keys=True)


def path_for(folder: str | Path, key: tuple) -> Path:
    """tj-<kind>-<hash of the key>.npz."""
    kind = re.sub(r"\W+", "_", str(key[0])).strip("_")
    return Path(folder) / f"tj-{kind}-{hashlib.sha256(key_text(key).encode()).hexdigest()[:20]}.npz"


def _encode(value, arrays: dict):
    """JSON skeleton of a value, its arrays moved into `arrays` (referenced by name)."""
    def ref(a, tag):
        name = f"a{len(arrays)}"
        arrays[name] = a
        return {tag: name}
    if isinstance(value, torch.Tensor):
        return ref(value.detach().cpu().numpy(), "tensor")
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"objects": [_encode(v, arrays) for v in value.tolist()]}
        return ref(value, "array")
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}  # keeps nan and inf, which JSON does not
    if isinstance(value, (tuple, list)):
        return {"tuple" if isinstance(value, tuple) else "list": [_encode(v, arrays) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[_encode(k, arrays), _encode(v, arrays)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and type(value).__module__.split(".")[0] == "tj":
        return {"dataclass": f"{type(value).__module__}:{type(value).__qualname__}",
                "fields": {f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _decode(node, arrays):
    if not isinstance(node, dict):
        return node
    (tag, body), *rest = node.items()
    if tag == "array":
        return arrays[body]
    if tag == "tensor":
        return torch.from_numpy(np.ascontiguousarray(arrays[body]))
    if tag == "objects":
        return np.array([_decode(v, arrays) for v in body], dtype=object)
    if tag == "float":
        return float(body)
    if tag in ("tuple", "list"):
        items = [_decode(v, arrays) for v in body]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in body}
    if tag == "dataclass":
        module, name = body.split(":")
        if module.split(".")[0] != "tj":
            raise ValueError(f"refusing to build {body}: only tj's own result types are stored")
        cls = getattr(importlib.import_module(module), name)
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"{body} is not a dataclass")
        return cls(**{k: _decode(v, arrays) for k, v in rest[0][1].items()})
    raise ValueError(f"unknown stored tag {tag!r}")


class DiskCache:
    """A folder of results keyed like the app's memory cache; a bad, stale or unreadable file reads as missing."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def keys(self) -> list[str]:
        """The key texts (key_text) of the readable results in the folder."""
        out = []
        for path in sorted(self.folder.glob("tj-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as f:
                    out.append(str(f["__key__"]))
            except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile):
                continue
        return out

    def has(self, key: tuple) -> bool:
        return path_for(self.folder, key).exists()

    def get(self, key: tuple):
        """The stored value or None (absent, truncated, another key's, or not tj's data)."""
        path = path_for(self.folder, key)
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if str(arrays.pop("__key__")) != key_text(key):
                return None
            return _decode(json.loads(str(arrays.pop("__value__"))), arrays)
        except (OSError, EOFError, KeyError, ValueError, TypeError, AttributeError, ImportError,
                zipfile.BadZipFile, json.JSONDecodeError):
            return None

    def put(self, key: tuple, value) -> Path:
        """Write atomically: readers see the old file or the whole new one, never half of it."""
        arrays: dict = {}
        skeleton = _encode(value, arrays)
        path = path_for(self.folder, key)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, __key__=np.array(key_text(key)), __value__=np.array(json.dumps(skeleton)), **arrays)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
