"""Training Jacobian Lab: the training Jacobian J = ∂θ_T/∂θ_0 of small networks, your own included, in PyTorch."""
from . import threads  # first: thread settings must precede torch
from .data import DataSpec, Dataset, from_arrays, load, out_of_distribution
from .jacobian import (Cancelled, Diverged, JacobianResult, jacobian_vector_product, memory_estimate,
                       training_jacobian)
from .cnn import CNNSpec, Conv
from .mlp import MLPSpec
from .module import ModuleSpec, from_module
from .networks import forward, init_params, layout
from .presets import PRESETS, Experiment, preset
from .spectrum import REGIONS, Spectrum, SVDFailed, bulk_mask, region_counts, regions, spectrum
from .results import RECIPES, OverLimits, Results
from .train import TrainResult, TrainSpec, train

__all__ = [
    "DataSpec", "Dataset", "from_arrays", "load", "out_of_distribution",
    "Cancelled", "Diverged", "JacobianResult", "jacobian_vector_product", "memory_estimate", "training_jacobian",
    "CNNSpec", "Conv", "MLPSpec", "ModuleSpec", "from_module", "forward", "init_params", "layout",
    "PRESETS", "Experiment", "preset",
    "REGIONS", "Spectrum", "SVDFailed", "bulk_mask", "region_counts", "regions", "spectrum",
    "TrainResult", "TrainSpec", "train",
    "RECIPES", "OverLimits", "Results",
]
