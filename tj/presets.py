"""An experiment as one frozen config, and the named presets."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import torch

from .attention import AttentionSpec
from .cnn import CNNSpec, Conv
from .data import DataSpec
from .mlp import MLPSpec
from .networks import spec_from_dict
from .train import TrainSpec

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Experiment:
    """Everything that determines θ_0, θ_T and J: hashable, so it keys every cache."""

    model: object = field(default_factory=MLPSpec)  # a network family's spec (tj.networks)
    data: DataSpec = field(default_factory=DataSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    seed: int = 0
    dtype: str = "float32"

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def replace(self, **changes) -> "Experiment":
        """A copy with top-level fields or dotted sub-fields changed: replace(**{'train.lr': 0.05})."""
        groups: dict[str, dict] = {}
        top = {}
        for key, value in changes.items():
            if "." in key:
                group, name = key.split(".", 1)
                groups.setdefault(group, {})[name] = value
            else:
                top[key] = value
        for group, sub in groups.items():
            top[group] = dataclasses.replace(getattr(self, group), **sub)
        return dataclasses.replace(self, **top)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        if d["data"]["dataset"] == "digits":  # so configs written before MNIST existed keep their text and hash
            del d["data"]["dataset"]
        return json.dumps(d, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "Experiment":
        d = json.loads(text)
        return Experiment(spec_from_dict(d["model"]), DataSpec(**d["data"]), TrainSpec(**d["train"]), int(d["seed"]),
                          d["dtype"])


PRESETS = {
    # Belrose & Scherlis (2024): 64 → 64 → 10 GELU, SGD momentum 0.9, cosine 0.1 → 0, 25 epochs of 25 batches.
    "paper": Experiment(),
    # Small enough for a live class (P = 1,210, 200 steps: J and its SVD in a few seconds), all three regions clear.
    "lecture": Experiment(model=MLPSpec(widths=(16,)), train=TrainSpec(epochs=8)),
    # Belrose & Scherlis's appendix, as they ran it in Flax: LeNet-5 on MNIST (P = 61,706), SGD momentum 0.9,
    # cosine 0.05 → 0 over 900 steps, batch 200, 3 epochs reshuffled. Its dense J needs a cluster (see README).
    "lenet5": Experiment(
        model=CNNSpec(convs=(Conv(6, 5, "SAME", 2), Conv(16, 5, "VALID", 2)), dense=(120, 84),
                      image=(1, 28, 28), pooling="avg", activation="relu", init="paper"),
        data=DataSpec(dataset="mnist", n_train=60000),
        train=TrainSpec(lr=0.05, epochs=3, batch_size=200, shuffle=True)),
    # A small CNN on the 8×8 digits for class: dense J and its SVD in about a minute, all three regions.
    # (GELU, like the paper's MLP: no dead ReLU units, so the exactly untouched directions are the predicted ones.)
    "cnn": Experiment(model=CNNSpec(convs=(Conv(4, 3, "SAME", 2),), dense=(), image=(1, 8, 8),
                                    activation="gelu_tanh"),
                      train=TrainSpec(lr=0.3, epochs=8)),
    # One self-attention layer on the 8×8 digits' rows (P = 2,074): about 92 % test accuracy in 150 steps; its
    # dense J (general engine) and SVD in about 100 s on 2 cores.
    "attention": Experiment(model=AttentionSpec(embed=16, heads=2, hidden=16), train=TrainSpec(lr=0.06, epochs=3,
                                                                                               batch_size=32)),
}


def preset(name: str) -> Experiment:
    """A named preset; unknown names raise ValueError listing the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
