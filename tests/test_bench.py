"""The benchmark runs and its correctness figure holds (its timings are reported, never asserted)."""
import dataclasses
import functools
import json
from collections import OrderedDict

import pytest
import torch

from tj import bench, traced
from tj.data import DataSpec
from tj.jacobian import replay_width
from tj.presets import preset


def test_quick_benchmark_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--quick", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["machine"]["matmul_peak_gflops_f32"] > 0
    runs = report["runs"]
    assert [(r["preset"], r["dtype"]) for r in runs] == [("lecture", "float32"), ("lecture", "float64")]
    for r in runs:
        for key in ("jacobian_s", "svd_s", "end_to_end_s", "gflops_per_s", "fraction_of_peak", "peak_memory_mb",
                    "reference_extrapolated_s"):
            assert r[key] > 0, key
        assert r["max_relative_column_error"] < (1e-5 if r["dtype"] == "float32" else 1e-12)
    assert "GFLOP/s" in capsys.readouterr().out


@pytest.mark.slow
def test_general_benchmark_writes_its_rows_beside_the_rest(tmp_path, capsys, monkeypatch, request):
    """`--general`, cut to one paper round of one piece, the cnn preset's replay piece per thread and LeNet-5 on
    400 images for one epoch, uncompiled and compiled."""
    monkeypatch.setattr(traced, "COMPILE", traced.COMPILE)  # the bench sets it per mode
    monkeypatch.setattr(traced, "_GRAPHS", OrderedDict())  # its compiled graphs go with the test
    monkeypatch.setattr(traced, "BUILD_SECONDS", {})
    bench.training_seconds.cache_clear()
    request.addfinalizer(bench.training_seconds.cache_clear)
    lenet = preset("lenet5")
    small = dataclasses.replace(lenet, data=DataSpec(dataset="mnist", n_train=400),
                                train=dataclasses.replace(lenet.train, epochs=1))
    monkeypatch.setattr(bench, "preset", lambda name: small if name == "lenet5" else preset(name))
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"runs": ["kept"]}))
    monkeypatch.setattr(bench, "paper_engines", functools.partial(bench.paper_engines, 1, 128))
    monkeypatch.setattr(bench, "GENERAL_RUNS", (("cnn", 1), ("lenet5", 1)))
    bench.main(["--general", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["runs"] == ["kept"]
    general = report["general_engine"]
    engines = ["fast", "general", "general+inductor"]
    assert [(r["preset"], r["engine"]) for r in general["rows"]] == [
        (name, engine) for name in ("paper", "cnn", "lenet5") for engine in engines]
    for r in general["rows"]:
        assert r["per_column_s"] > 0 and r["jacobian_s_extrapolated"] > 0 and r["extrapolated"], r
    for label in engines[1:]:
        assert len(general["paper_general_over_fast_rounds"][label]) == 1
        assert general["paper_general_over_fast"][label] > 0
    assert general["rows"][3]["gflops_per_s"] > 0 and general["rows"][6]["gflops_per_s"] > 0
    lenet_rows = general["rows"][6:]
    # one replay piece per thread
    assert [r["columns"] for r in lenet_rows] == [torch.get_num_threads() * replay_width(small, e) for e in
                                                  ("fast", "general", "general")]
    projections = general["lenet5_projections"]
    assert [p["engine"] for p in projections] == engines
    for p, r in zip(projections, lenet_rows):
        core_s = r["per_column_s"] * torch.get_num_threads() * small.model.n_params
        assert p["core_days"] == pytest.approx(core_s / 86400)
        walls = [p["wall_s"][w] for w in ("2", "64", "512")]
        assert walls == pytest.approx([core_s / w + r["train_s"] for w in (2, 64, 512)])
    printed = capsys.readouterr().out
    for line in ("paper MLP: general / fast per column", "paper MLP: general+inductor / fast", "cnn fast:",
                 "lenet5 fast: the whole J is"):
        assert line in printed
