"""The benchmark runs and its correctness figure holds (its timings are reported, never asserted)."""
import functools
import json

import pytest

from tj import bench


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
    """`--general`, cut to one paper round of one piece and the cnn preset's replay piece per thread, uncompiled."""
    from tj import traced

    monkeypatch.setattr(traced, "COMPILE", traced.COMPILE)  # the bench sets it per mode
    request.addfinalizer(bench.training_seconds.cache_clear)
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"runs": ["kept"]}))
    monkeypatch.setattr(bench, "paper_engines", functools.partial(bench.paper_engines, 1, 128))
    monkeypatch.setattr(bench, "GENERAL_RUNS", (("cnn", 1),))
    monkeypatch.setattr(bench, "GENERAL_MODES", (("general", False),))
    bench.main(["--general", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["runs"] == ["kept"]
    general = report["general_engine"]
    assert [(r["preset"], r["engine"]) for r in general["rows"]] == [
        ("paper", "fast"), ("paper", "general"), ("cnn", "fast"), ("cnn", "general")]
    for r in general["rows"]:
        assert r["per_column_s"] > 0 and r["jacobian_s_extrapolated"] > 0 and r["extrapolated"], r
    assert len(general["paper_general_over_fast_rounds"]["general"]) == 1
    assert general["paper_general_over_fast"]["general"] > 0 and general["rows"][2]["gflops_per_s"] > 0
    assert general["lenet5_projections"] == []
    printed = capsys.readouterr().out
    assert "paper MLP: general / fast per column" in printed and "cnn fast:" in printed
