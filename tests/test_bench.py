"""The benchmark runs and its correctness figure holds (its timings are reported, never asserted)."""
import json

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
