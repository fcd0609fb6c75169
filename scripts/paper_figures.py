"""The paper's qualitative results on the paper preset, measured with tj: `python scripts/paper_figures.py`.

Writes docs/paper_figures.json; takes about ten minutes on 2 cores (five Jacobians of P = 4,810).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tj  # noqa: E402
from tj.compare import bulk_basis, mean_principal_cosine, random_overlap, variants  # noqa: E402
from tj.perturb import linearity, output_effect, region_medians, subspace_training  # noqa: E402
from tj.why import epoch_checkpoints, measured_untouched, spectra_through_training, untouched_for  # noqa: E402


def main():
    out, t0 = {}, time.perf_counter()
    exp = tj.preset("paper")
    res = tj.training_jacobian(exp)
    spec = tj.spectrum(res.jacobian, res.theta0, res.theta_final)
    sigma = spec.singular_values
    dist = np.abs(sigma - 1)
    out["main"] = {"test_loss": res.train.metrics.test_loss[-1], "sigma_1": sigma[0],
                   "lt_1e-2": int((dist < 1e-2).sum()), "lt_1e-1": int((dist < 1e-1).sum()),
                   "below_0.5": int((sigma < 0.5).sum()), "jacobian_s": res.seconds, "svd_s": spec.seconds}
    print("main", out["main"], flush=True)

    labels = tj.regions(sigma, threshold=0.1)
    kl = output_effect(exp, res.theta_final, spec.Vh)
    out["kl_median"] = region_medians(kl, labels)
    out["kl_bulk_noise_over_train"] = out["kl_median"]["noise"]["bulk"] / out["kl_median"]["train"]["bulk"]
    print("kl", out["kl_median"], flush=True)

    bulk = np.flatnonzero(labels == "bulk")
    approx = bulk[dist[bulk] >= 1e-6]
    k_bulk = int(approx[len(approx) // 2])
    for name, k in (("bulk", k_bulk), ("top", 0)):
        lin = linearity(exp, spec, k)
        rel = np.abs(lin.along - lin.predicted) / lin.predicted
        out[f"linearity_{name}"] = {"index": k, "sigma": sigma[k], "max_rel_dev": float(rel.max()),
                                    "rel_dev_at_eps": dict(zip(map(float, lin.eps[::6]), map(float, rel[::6]))),
                                    "test_loss_min": float(np.nanmin(lin.test_loss)),
                                    "test_loss_max": float(np.nanmax(lin.test_loss)),
                                    "across_over_along_max": float((lin.across / np.maximum(lin.along, 1e-300)).max())}
        print(name, out[f"linearity_{name}"], flush=True)

    sub = subspace_training(exp, spec, [1000])
    out["subspace_k1000"] = {kind: float(v[0]) for kind, v in sub.items()}
    print("subspace", out["subspace_k1000"], flush=True)

    ks = [100, 500, 1000, 2000, 3000]
    main_s = (sigma, spec.Vh)
    del res
    for name, v in variants(exp, 0).items():
        r = tj.training_jacobian(v)
        s = tj.spectrum(r.jacobian, r.theta0, r.theta_final)
        d = np.abs(s.singular_values - 1)
        out[name] = {"lt_1e-2": int((d < 1e-2).sum()), "lt_1e-1": int((d < 1e-1).sum()),
                     "overlap": {k: mean_principal_cosine(bulk_basis(*main_s, k), bulk_basis(s.singular_values, s.Vh, k))
                                 for k in ks}}
        print(name, out[name], flush=True)
        del r, s
    out["random_overlap"] = {k: random_overlap(exp.model.n_params, k) for k in ks}

    steps = epoch_checkpoints(exp, 4)
    evo = spectra_through_training(exp, steps)
    out["evolution"] = [{"epoch": float(e), **c} for e, c in zip(evo.epochs, evo.counts(1e-2))]
    print("evolution", out["evolution"], flush=True)
    del evo

    exp64 = exp.replace(dtype="float64")
    r64 = tj.training_jacobian(exp64)
    s64 = torch.linalg.svdvals(r64.jacobian).numpy()
    pred = untouched_for(exp64)
    out["untouched"] = {"predicted": pred.total, "dead_pixel": pred.n_dead_pixel_directions,
                        "softmax": pred.n_softmax_directions, "input_null": pred.n_input_null_directions,
                        "measured_1e-9": measured_untouched(s64, 1e-9), "measured_1e-6": measured_untouched(s64, 1e-6)}
    print("untouched", out["untouched"], flush=True)
    out["total_s"] = time.perf_counter() - t0
    Path("docs").mkdir(exist_ok=True)
    Path("docs/paper_figures.json").write_text(json.dumps(out, indent=2, default=float))
    print("wrote docs/paper_figures.json", flush=True)


if __name__ == "__main__":
    main()
