import sys

import pytest
import torch

from tj import DataSpec, Experiment, MLPSpec, TrainSpec  # installed by requirements.txt (pip install -e .)


def tiny(widths=(5,), activation="gelu_tanh", optimizer="sgd", dtype="float64", **train) -> Experiment:
    """A net small enough for dense reference Jacobians: 40 images, batches of 16, 3 epochs."""
    opts = dict(optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.01, epochs=3, batch_size=16)
    opts.update(train)
    return Experiment(MLPSpec(tuple(widths), activation), DataSpec(n_train=40), TrainSpec(**opts), seed=1, dtype=dtype)


@pytest.fixture(autouse=True)
def _no_state_left():
    """Every test ends with the thread count it started with, and leaves no server state (the shared result
    cache, the limits and their cache folder) to the next test in its process."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
    streamlit = sys.modules.get("streamlit")
    if streamlit is not None:
        streamlit.cache_resource.clear()
        streamlit.cache_data.clear()
