"""J and its SVD as one .npz a researcher can open anywhere (CLI --out, the download button, uploads): atomic
writes, no pickle, shapes checked against the config. The app's own cache folder is tj.cache's DiskCache."""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .jacobian import JacobianResult
from .presets import Experiment
from .spectrum import Spectrum


class BadFile(Exception):
    """A file that is not a valid saved result; the message says why."""


@dataclass(frozen=True, eq=False)
class Saved:
    """What a result file holds."""

    experiment: Experiment
    jacobian: np.ndarray
    theta0: np.ndarray
    theta_final: np.ndarray
    singular_values: np.ndarray
    U: np.ndarray
    Vh: np.ndarray


def save(path: str | Path, result: JacobianResult, spec: Spectrum) -> None:
    """Write J, its SVD, θ_0, θ_T and the config JSON; readers never see a half-written file."""
    path = Path(path)
    dtype = result.jacobian.numpy().dtype
    arrays = dict(
        jacobian=result.jacobian.numpy(),
        singular_values=spec.singular_values,
        U=spec.U.astype(dtype, copy=False),
        Vh=spec.Vh.astype(dtype, copy=False),
        theta0=result.theta0.numpy(),
        theta_final=result.theta_final.numpy(),
        config=np.array(result.experiment.to_json()),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a server running as another user must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(source) -> Saved:
    """Read and validate a saved result (a path or a file-like object)."""
    try:
        with np.load(source, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as err:
        raise BadFile(f"the file holds pickled objects, which are never loaded ({err})") from err
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise BadFile(f"not a readable .npz file ({type(err).__name__}: {err})") from err
    need = ("config", "jacobian", "theta0", "theta_final", "singular_values", "U", "Vh")
    missing = [k for k in need if k not in arrays]
    if missing:
        raise BadFile(f"the file lacks {', '.join(missing)}")
    try:
        experiment = Experiment.from_json(str(arrays["config"]))
        n = experiment.model.n_params
    except Exception as err:  # any malformed JSON or field is the file's fault
        raise BadFile(f"the config inside the file is not valid ({type(err).__name__}: {err})") from err
    shapes = dict(jacobian=(n, n), U=(n, n), Vh=(n, n), theta0=(n,), theta_final=(n,), singular_values=(n,))
    for name, shape in shapes.items():
        a = arrays[name]
        if a.shape != shape:
            raise BadFile(f"{name} has shape {a.shape}, but the config's network needs {shape}")
        if a.dtype not in (np.float32, np.float64):
            raise BadFile(f"{name} has dtype {a.dtype}; expected float32 or float64")
        if not np.isfinite(a).all():
            raise BadFile(f"{name} has NaN/Inf entries")
    return Saved(experiment, *(arrays[k] for k in need[1:]))


def as_result(saved: Saved) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """J, θ_0 and θ_T of a loaded file as tensors."""
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (saved.jacobian, saved.theta0, saved.theta_final))


def restore(saved: Saved):
    """A loaded file back as (JacobianResult, Spectrum); training is rerun (fast) for the metrics, and must
    land on the file's θ_T bit for bit, else the file is refused as stale."""
    from .data import load as load_data
    from .spectrum import Spectrum
    from .train import train

    exp = saved.experiment
    dtype = exp.torch_dtype
    theta0 = torch.from_numpy(np.ascontiguousarray(saved.theta0)).to(dtype)
    run = train(exp.model, exp.train, load_data(exp.data, dtype), theta0, exp.seed)
    if not torch.equal(run.theta_final, torch.from_numpy(np.ascontiguousarray(saved.theta_final)).to(dtype)):
        raise BadFile("θ_T in the file is not what this code trains from its θ_0 and config (a stale or edited file)")
    jac = torch.from_numpy(np.ascontiguousarray(saved.jacobian))
    u, vh = saved.U.astype(np.float64), saved.Vh.astype(np.float64)
    moved = (run.theta_final - run.theta0).double().numpy()
    spec = Spectrum(saved.singular_values.astype(np.float64), u, vh, np.einsum("ji,ij->i", u, vh),
                    np.abs(vh @ moved), 0.0, "loaded from file")
    return JacobianResult(exp, jac, run, 0.0), spec
