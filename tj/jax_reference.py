"""The paper's own method, for the benchmark's anchor: `jax.jacfwd` of a jitted `lax.scan` training loop.

Belrose & Scherlis computed J this way (JAX/Flax, optax SGD with heavy-ball momentum, float32). This is the
same training run as tj's for an MLP preset with SGD (same data, batches, θ_0, schedule and loss), written in
plain JAX so that nothing but jax and jaxlib is needed (`pip install -r requirements-bench.txt`). It runs in
its own process: `python -m tj.jax_reference --preset paper --out J.npz` prints a JSON line of seconds.
"""
from __future__ import annotations

import argparse
import json
import time


def training_jacobian_jax(experiment):
    """(J, θ_T, compile seconds, run seconds) by jax.jacfwd over the whole jitted training function."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from .data import load
    from .networks import init_params, layout
    from .train import batch_indices, learning_rates

    spec, tspec = experiment.model, experiment.train
    if getattr(spec, "family", "mlp") != "mlp" or tspec.optimizer != "sgd" or tspec.loss != "cross_entropy":
        raise ValueError("the JAX reference covers the MLP presets with SGD and cross-entropy")
    if spec.activation != "gelu_tanh":
        raise ValueError("the JAX reference uses the paper's GELU (tanh approximation)")
    jax.config.update("jax_enable_x64", experiment.dtype == "float64")
    dtype = jnp.float64 if experiment.dtype == "float64" else jnp.float32
    data = load(experiment.data, experiment.torch_dtype)
    idx = batch_indices(tspec, len(data.y_train), experiment.seed).numpy()
    x = jnp.asarray(data.x_train.numpy()[idx], dtype)                  # (T, B, 64)
    y = jnp.asarray(data.y_train.numpy()[idx])                         # (T, B)
    lrs = jnp.asarray(learning_rates(tspec, len(idx)), dtype)          # (T,)
    blocks = layout(spec)
    theta0 = jnp.asarray(init_params(spec, experiment.seed, experiment.torch_dtype).numpy())

    def loss(theta, xb, yb):
        h = xb
        for i in range(0, len(blocks), 2):
            w, b = blocks[i], blocks[i + 1]
            h = h @ theta[w.start:w.stop].reshape(w.shape).T + theta[b.start:b.stop]
            if i + 2 < len(blocks):
                h = jax.nn.gelu(h, approximate=True)
        logp = jax.nn.log_softmax(h)
        return -jnp.take_along_axis(logp, yb[:, None], 1).mean()

    def run(theta):
        def step(carry, batch):
            th, m = carry
            xb, yb, lr = batch
            m = jax.grad(loss)(th, xb, yb) + tspec.momentum * m
            return (th - lr * m, m), None
        (theta_final, _), _ = jax.lax.scan(step, (theta, jnp.zeros_like(theta)), (x, y, lrs))
        return theta_final

    start = time.perf_counter()
    jac_fn = jax.jit(jax.jacfwd(run)).lower(theta0).compile()
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    jac = jac_fn(theta0).block_until_ready()
    seconds = time.perf_counter() - start
    return np.asarray(jac), np.asarray(jax.jit(run)(theta0)), compiled, seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tj.jax_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--out", help="save J and θ_T here (.npz) to compare with tj's")
    args = parser.parse_args(argv)
    import numpy as np

    from .presets import preset

    import jax
    jac, theta_final, compiled, seconds = training_jacobian_jax(preset(args.preset))
    if args.out:
        np.savez(args.out, jacobian=jac, theta_final=theta_final)
    print(json.dumps({"preset": args.preset, "jax": jax.__version__, "compile_s": compiled, "jacobian_s": seconds}))


if __name__ == "__main__":
    main()
