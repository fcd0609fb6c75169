"""What a config names by hash but cannot hold: a user's torch module and arrays, kept here for this process.

An Experiment stays small, frozen and hashable (it keys every cache and store); the objects it names live in
this registry under the SHA-256 of their contents. `export` packs the ones an experiment needs, so that a
Dask worker (another process) can `install` them before it computes."""
from __future__ import annotations

import hashlib

import numpy as np

_OBJECTS: dict[str, object] = {}


def digest(*arrays) -> str:
    """SHA-256 over arrays' dtypes, shapes and bytes (C order): the identity of data or of a θ_0."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def put(key: str, value) -> str:
    _OBJECTS[key] = value
    return key


def get(key: str):
    """The object behind a hash, or None when this process has not seen it."""
    return _OBJECTS.get(key)


def keys_of(experiment) -> tuple[str, ...]:
    """The registry keys an experiment names (its data's and its module's)."""
    keys = []
    if experiment.data.dataset.startswith("arrays:"):
        keys.append(experiment.data.dataset)
    state = getattr(experiment.model, "state", None)
    if state is not None:
        keys.append(state)
    return tuple(keys)


def export(experiment) -> dict:
    """The objects an experiment needs from this process, for another one (picklable with cloudpickle)."""
    return {k: _OBJECTS[k] for k in keys_of(experiment) if k in _OBJECTS}


def install(payload: dict | None) -> None:
    _OBJECTS.update(payload or {})
