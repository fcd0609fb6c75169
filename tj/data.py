"""The datasets shipped with the package (UCI 8×8 digits, MNIST), their splits, and their variants."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import live

N_TEST = 197
LABELS = ("true", "shuffled")
INPUTS = ("digits", "uniform")
DATASETS = ("digits", "mnist")
IMAGE = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}


@dataclass(frozen=True)
class DataSpec:
    """Which training set: true or seeded-shuffled labels, real or uniform-noise inputs, first n_train images.

    `dataset` is "digits" (the 8×8 UCI digits, 1,600 train / 197 test) or "mnist" (28×28, 60,000 / 10,000)."""

    labels: str = "true"
    inputs: str = "digits"
    variant_seed: int = 0
    n_train: int = 1600
    dataset: str = "digits"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test tensors; pixels scaled to [0, 1]."""

    x_train: torch.Tensor  # (N, pixels): 64 for the digits, 784 for MNIST
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor   # (197, 64) or (10000, 784)
    y_test: torch.Tensor   # (197,) or (10000,)


@lru_cache(maxsize=1)
def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as uint8 pixels 0–16 (1797, 64) and labels (1797,)."""
    with np.load(Path(__file__).with_name("digits.npz"), allow_pickle=False) as f:
        return f["pixels"], f["labels"]


@lru_cache(maxsize=1)
def raw_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST in its original order: x_train (60000, 784), y_train, x_test (10000, 784), y_test; uint8."""
    with np.load(Path(__file__).with_name("mnist_uint8.npz"), allow_pickle=False) as f:
        return (f["x_train"].reshape(60000, 784), f["y_train"], f["x_test"].reshape(10000, 784), f["y_test"])


def paper_split() -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: sklearn's train_test_split(test_size=197, random_state=0)."""
    perm = np.random.RandomState(0).permutation(len(raw_digits()[1]))
    return perm[N_TEST:], perm[:N_TEST]


def load(spec: DataSpec = DataSpec(), dtype=torch.float32) -> Dataset:
    """The training and test sets for a spec (the test set is always the dataset's true test images)."""
    if spec.dataset == "mnist":
        xtr, ytr, xte, yte = raw_mnist()
        if not 1 <= spec.n_train <= len(ytr):
            raise ValueError(f"n_train must be between 1 and {len(ytr)}, got {spec.n_train}")
        x_train = torch.from_numpy(xtr[: spec.n_train]).to(dtype) / 255
        y_train = torch.from_numpy(ytr[: spec.n_train].astype(np.int64))
        x_test, y_test = torch.from_numpy(xte).to(dtype) / 255, torch.from_numpy(yte.astype(np.int64))
    elif spec.dataset == "digits":
        pixels, labels = raw_digits()
        train, test = paper_split()
        if not 1 <= spec.n_train <= len(train):
            raise ValueError(f"n_train must be between 1 and {len(train)}, got {spec.n_train}")
        train = train[: spec.n_train]
        x = torch.from_numpy(pixels.astype(np.float64) / 16.0)
        y = torch.from_numpy(labels.astype(np.int64))
        x_train, y_train, x_test, y_test = x[train], y[train], x[test].to(dtype), y[test]
    elif spec.dataset.startswith("arrays:"):
        found = live.get(spec.dataset)
        if found is None:
            raise ValueError("this experiment's own arrays are not in this process: build it with tj.from_module "
                             "(or the command line's --data FILE.npz) here first")
        xtr, ytr, xte, yte = found
        if not 1 <= spec.n_train <= len(ytr):
            raise ValueError(f"n_train must be between 1 and {len(ytr)}, got {spec.n_train}")
        x_train, y_train = torch.from_numpy(xtr[: spec.n_train]), torch.from_numpy(ytr[: spec.n_train])
        x_test, y_test = torch.from_numpy(xte).to(dtype), torch.from_numpy(yte)
    else:
        raise ValueError(f"unknown dataset {spec.dataset!r}; choose one of {DATASETS}")
    g = torch.Generator().manual_seed(int(spec.variant_seed))
    if spec.labels == "shuffled":
        y_train = y_train[torch.randperm(len(y_train), generator=g)]
    elif spec.labels != "true":
        raise ValueError(f"unknown labels {spec.labels!r}; choose one of {LABELS}")
    if spec.inputs == "uniform":
        x_train = torch.rand(x_train.shape, generator=g, dtype=torch.float64)
    elif spec.inputs != "digits":
        raise ValueError(f"unknown inputs {spec.inputs!r}; choose one of {INPUTS}")
    return Dataset(x_train.to(dtype), y_train, x_test, y_test)


def from_arrays(train, test) -> DataSpec:
    """A DataSpec for your own data: train and test are (X, y) with X (N, …) numbers and y (N,) class indices
    0…C−1 (tensors or numpy arrays). The arrays are kept in this process under their SHA-256, which names them in
    the config; X is flattened per example, as tj's networks read it."""
    parts = []
    for name, (x, y) in (("train", train), ("test", test)):
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
        if x.ndim < 2 or not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise ValueError(f"the {name} inputs must be finite numbers with one example per row, (N, …); got "
                             f"shape {x.shape} of {x.dtype}")
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise ValueError(f"the {name} labels must be {len(x)} whole class indices from 0, shape ({len(x)},); "
                             f"got shape {y.shape} of {y.dtype}")
        parts += [x.reshape(len(x), -1).astype(np.float64), y.astype(np.int64)]
    if parts[0].shape[1] != parts[2].shape[1]:
        raise ValueError(f"train and test examples differ in size: {parts[0].shape[1]} and {parts[2].shape[1]} values")
    key = live.put("arrays:" + live.digest(*parts)[:32], tuple(parts))
    return DataSpec(n_train=len(parts[1]), dataset=key)


def out_of_distribution(data: Dataset, seed: int = 0) -> dict[str, torch.Tensor]:
    """Input sets for the OOD experiments: train, test, inverted test (1 − x), Gaussian N(0, 1) noise."""
    g = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(data.x_test.shape, generator=g, dtype=torch.float64).to(data.x_test.dtype)
    return {"train": data.x_train, "test": data.x_test, "inverted": 1 - data.x_test, "noise": noise}


def dead_pixels(x: torch.Tensor) -> torch.Tensor:
    """Indices of input pixels that are zero in every row of x."""
    return torch.nonzero((x == 0).all(0)).flatten()
