"""J on disk as a zarr array, one chunk per column block: resumable, checksummed, readable block by block.

Layout of a store `J.zarr` (a zarr v3 group):
- attributes: the experiment's config JSON and its hash, dtype, P, block and chunk sizes, code version;
- `J` (P, P), chunked (P, block): column block i is chunk i, so concurrent writers never share a chunk;
- `checksums` (n_blocks, 32) uint8, one chunk per row: the SHA-256 of block i, written only after its data.
A block is complete when its checksum row is non-zero; `verify` rereads the data and compares.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .presets import Experiment

FORMAT = "tj-jacobian-store/1"
DEFAULT_CHUNKS_PER_BLOCK = 4  # 256 columns: LeNet-5 in 242 blocks, enough for a few hundred workers


class StoreError(Exception):
    """A store that cannot be used for this request; the message says why in one sentence."""


def config_hash(experiment: Experiment) -> str:
    """SHA-256 of the experiment's canonical JSON: what a store is made for."""
    return hashlib.sha256(experiment.to_json().encode()).hexdigest()


def code_version() -> str:
    """`git describe` of this checkout, or 'unknown' outside git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def checksum(block: np.ndarray) -> bytes:
    """SHA-256 of a block's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(block).tobytes()).digest()


def _zarr():
    import zarr  # imported lazily: only the cluster path needs it

    return zarr


@dataclass(frozen=True, eq=False)
class JStore:
    """An open store; block i holds columns [i·block, min((i+1)·block, P)) of J."""

    path: str
    experiment: Experiment
    block: int
    chunk: int
    engine: str
    attrs: dict

    @property
    def n_params(self) -> int:
        return self.experiment.model.n_params

    @property
    def n_blocks(self) -> int:
        return -(-self.n_params // self.block)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.experiment.dtype)

    def columns(self, i: int) -> tuple[int, int]:
        return i * self.block, min((i + 1) * self.block, self.n_params)

    def _array(self, name: str, mode: str = "r"):
        return _zarr().open_array(self.path, path=name, mode=mode)

    def read_block(self, i: int) -> np.ndarray:
        """Columns of block i, (P, k)."""
        c0, c1 = self.columns(i)
        return self._array("J")[:, c0:c1]

    def write_block(self, i: int, data: np.ndarray) -> bytes:
        """Write block i's data, then its checksum (so a block is never marked complete before its data)."""
        c0, c1 = self.columns(i)
        if data.shape != (self.n_params, c1 - c0) or data.dtype != self.dtype:
            raise ValueError(f"block {i} must be {(self.n_params, c1 - c0)} {self.dtype}; got {data.shape} {data.dtype}")
        self._array("J", "r+")[:, c0:c1] = data
        digest = checksum(data)
        self._array("checksums", "r+")[i] = np.frombuffer(digest, np.uint8)
        return digest

    def checksums(self) -> np.ndarray:
        """(n_blocks, 32) uint8; an all-zero row is a block not written yet."""
        return self._array("checksums")[:]

    def complete(self) -> np.ndarray:
        """Which blocks have a recorded checksum (bool, n_blocks); `verify` checks them against their data."""
        return self.checksums().any(axis=1)

    def verify(self) -> list[int]:
        """Blocks marked complete whose data no longer matches their checksum (or cannot be read)."""
        sums, bad = self.checksums(), []
        for i in np.flatnonzero(sums.any(axis=1)):
            try:
                ok = checksum(self.read_block(int(i))) == sums[i].tobytes()
            except Exception:  # an unreadable chunk is as corrupt as a wrong one
                ok = False
            if not ok:
                bad.append(int(i))
        return bad

    def missing(self) -> tuple[list[int], list[int]]:
        """(blocks to compute, of which corrupt): those never completed plus those that fail `verify`."""
        corrupt = self.verify()
        todo = sorted(set(np.flatnonzero(~self.complete()).tolist()) | set(corrupt))
        return todo, corrupt

    @property
    def finished(self) -> bool:
        return bool(self.complete().all())

    def read(self) -> np.ndarray:
        """The whole J (P, P) in memory; the store must be complete."""
        if not self.finished:
            n = int(self.complete().sum())
            raise StoreError(f"{self.path} holds {n} of {self.n_blocks} column blocks; finish it first "
                             f"(rerun `python -m tj jacobian` with the same --store)")
        return self._array("J")[:]

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """J·v, reading one column block at a time."""
        out = np.zeros(self.n_params, np.result_type(self.dtype, v.dtype))
        for i in range(self.n_blocks):
            c0, c1 = self.columns(i)
            out += self.read_block(i) @ v[c0:c1]
        return out

    def rmatvec(self, u: np.ndarray) -> np.ndarray:
        """Jᵀ·u, reading one column block at a time."""
        return np.concatenate([self.read_block(i).T @ u for i in range(self.n_blocks)])

    def operator(self):
        """J as a scipy LinearOperator (for svds, eigsh on JᵀJ, …), read lazily from disk."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator((self.n_params, self.n_params), matvec=self.matvec, rmatvec=self.rmatvec,
                              matmat=lambda m: np.stack([self.matvec(c) for c in m.T], 1),
                              rmatmat=lambda m: np.stack([self.rmatvec(c) for c in m.T], 1),
                              dtype=self.dtype)


def _describe(attrs: dict) -> str:
    return f"P = {attrs.get('n_params'):,}, {attrs.get('dtype')}, config {str(attrs.get('config_hash'))[:12]}"


def open_store(path: str | Path) -> JStore:
    """An existing store, read-only metadata; StoreError if it is not one."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise StoreError(f"{path} is not a Jacobian store (no zarr.json)")
    try:
        attrs = dict(_zarr().open_group(str(path), mode="r").attrs)
        if attrs.get("format") != FORMAT:
            raise StoreError(f"{path} is a zarr group but not a Jacobian store written by tj")
        experiment = Experiment.from_json(attrs["config"])
        return JStore(str(path), experiment, int(attrs["block"]), int(attrs["chunk"]), attrs["engine"], attrs)
    except StoreError:
        raise
    except Exception as err:  # also a store that another process is still creating
        raise StoreError(f"{path} is not a readable Jacobian store ({type(err).__name__}: {err})") from None


def create_or_open(path: str | Path, experiment: Experiment, block: int | None, chunk: int,
                   engine: str = "fast") -> JStore:
    """The store at `path` for this experiment: created if absent; refused (untouched) if made for another."""
    path = Path(path)
    n = experiment.model.n_params
    if block is not None and (block <= 0 or block % chunk):
        raise StoreError(f"--block must be a positive multiple of the engine's chunk of {chunk} columns "
                         f"(so every column is padded as in training_jacobian); got {block}")
    if path.exists():
        store = open_store(path)
        a = store.attrs
        if a["n_params"] != n:
            raise StoreError(f"{path} was made for P = {a['n_params']:,}, this experiment has P = {n:,}; "
                             f"nothing was changed (use another --store)")
        if a["dtype"] != experiment.dtype:
            raise StoreError(f"{path} holds a {a['dtype']} J, this experiment is {experiment.dtype}; "
                             f"nothing was changed (use another --store)")
        if a["config_hash"] != config_hash(experiment):
            raise StoreError(f"{path} was made for another experiment ({_describe(a)}); nothing was changed "
                             f"(use another --store)")
        if a["engine"] != engine:
            raise StoreError(f"{path} holds a J from the {a['engine']} engine, this run asks for the {engine} one "
                             f"(their roundings differ); nothing was changed (use another --store)")
        if block is not None and block != store.block or store.chunk != chunk:
            raise StoreError(f"{path} uses blocks of {store.block} columns in chunks of {store.chunk}; "
                             f"rerun without --block (or with --block {store.block})")
        return store
    if not path.parent.exists():
        raise StoreError(f"the folder {path.parent} does not exist")
    block = block or DEFAULT_CHUNKS_PER_BLOCK * chunk
    n_blocks = -(-n // block)
    attrs = dict(format=FORMAT, config=experiment.to_json(), config_hash=config_hash(experiment),
                 dtype=experiment.dtype, n_params=n, engine=engine, block=block, chunk=chunk, n_blocks=n_blocks,
                 code_version=code_version(), layout="J[i, j] = dθ_T[i]/dθ_0[j]; chunk k = columns [k·block, (k+1)·block)")
    zarr = _zarr()
    group = zarr.open_group(str(path), mode="w-")
    group.create_array("J", shape=(n, n), chunks=(n, block), dtype=experiment.dtype, compressors=None,
                       fill_value=0)
    group.create_array("checksums", shape=(n_blocks, 32), chunks=(1, 32), dtype="uint8", compressors=None,
                       fill_value=0)
    group.attrs.update(attrs)
    return JStore(str(path), experiment, block, chunk, engine, json.loads(json.dumps(attrs)))


def as_result(store: JStore):
    """A finished store as a JacobianResult: J read from disk, the run retrained (fast) for θ_0, θ_T and metrics."""
    import torch

    from .data import load
    from .jacobian import JacobianResult
    from .networks import init_params
    from .train import train

    start = time.perf_counter()
    exp = store.experiment
    jac = torch.from_numpy(store.read())
    dtype = exp.torch_dtype
    run = train(exp.model, exp.train, load(exp.data, dtype), init_params(exp.model, exp.seed, dtype), exp.seed)
    return JacobianResult(exp, jac, run, time.perf_counter() - start, engine=store.engine)


def find(directory: str | Path | None, experiment: Experiment) -> JStore | None:
    """A finished, verified store of this experiment among `directory/*.zarr`, or None."""
    if not directory or not Path(directory).is_dir():
        return None
    for path in sorted(Path(directory).glob("*.zarr")):
        try:
            store = open_store(path)
        except StoreError:
            continue
        if store.attrs.get("config_hash") == config_hash(experiment) and store.finished and not store.verify():
            return store
    return None
