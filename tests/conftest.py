import os

# Two test processes share the 2 cores (pytest.ini: -n 2): one thread each, unless the caller chose. The bits do
# not depend on it (README: "Same bits").
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TJ_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from tj import DataSpec, Experiment, MLPSpec, TrainSpec  # installed by requirements.txt (pip install -e .)


def tiny(widths=(5,), activation="gelu_tanh", optimizer="sgd", dtype="float64", **train) -> Experiment:
    """A net small enough for dense reference Jacobians: 40 images, batches of 16, 3 epochs."""
    opts = dict(optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.01, epochs=3, batch_size=16)
    opts.update(train)
    return Experiment(MLPSpec(tuple(widths), activation), DataSpec(n_train=40), TrainSpec(**opts), seed=1, dtype=dtype)


@pytest.fixture(autouse=True)
def _threads():
    """Every test ends with the thread count it started with, whatever it set."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
