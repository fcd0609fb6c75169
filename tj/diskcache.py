"""Any cached result on disk as .npz: atomic writes, no pickle, the key checked on reading, tj types only."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch


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
