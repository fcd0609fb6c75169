"""The pages' "what to notice" sentences follow the numbers: each claim flips when the numbers do."""
import numpy as np

from tj import MLPSpec
from tj.notes import compare_notes, dead_pixel_share, evolution_notes, linear_up_to, perturb_notes, spectrum_notes
from tj.perturb import Linearity


def _regions(sigma, tau):
    return np.where(np.abs(sigma - 1) < tau, "bulk", np.where(sigma > 1, "chaotic", "stable"))


def test_spectrum_notes_count_the_regions_they_name():
    sigma = np.array([5.0, 2.0, 1.001, 1.0, 0.9995, 0.2])
    labels = _regions(sigma, 1e-2)
    text = spectrum_notes(sigma, labels, np.ones(6), 1e-2)
    assert "3 of 6 σ (50 %) lie within τ = 0.01 of 1: the bulk, the largest region." in text
    assert "The 2 chaotic directions (σ up to 5)" in text and "The 1 stable ones (σ down to 0.2)" in text
    assert "comes out of training as it went in" in text
    few = spectrum_notes(sigma, _regions(sigma, 1e-4), np.ones(6), 1e-4)
    assert "1 of 6 σ (17 %)" in few and "the largest region here is chaotic (3)" in few


def test_spectrum_notes_do_not_call_a_turned_bulk_aligned():
    sigma = np.array([2.0, 1.0, 1.0])
    text = spectrum_notes(sigma, _regions(sigma, 0.1), np.array([1.0, 0.5, 0.6]), 0.1)
    assert "0.550" in text and "partly turned" in text and "as it went in" not in text


def test_dead_pixel_share_is_the_weight_on_dead_first_layer_inputs():
    spec = MLPSpec(widths=(2,))
    v = np.zeros(spec.n_params)
    v[[0, 64 + 3]] = 1.0        # W1[0, 0] and W1[1, 3]
    v[-1] = 1.0                 # a bias of the last layer
    assert dead_pixel_share(spec, v, np.array([0, 5])) == 1 / 3
    assert dead_pixel_share(spec, v, np.array([0, 3])) == 2 / 3
    assert dead_pixel_share(spec, v, np.array([], dtype=int)) is None
    text = spectrum_notes(np.array([1.0]), np.array(["bulk"]), np.ones(1), 0.1, 0, 2 / 3, 2)
    assert "v_0 (bulk) puts 67 % of its weight" in text and "the 2 pixels" in text


def _lin(ratio, theta0_norm=float("nan"), test_loss=np.zeros(4)):
    eps = np.array([1e-3, 1e-1, 1e1, 1e3])
    return Linearity(7, eps, eps * 0.5 * np.asarray(ratio), eps * 0.0, np.asarray(test_loss), eps * 0.5, theta0_norm)


def test_linearity_notes_say_where_the_prediction_breaks_and_why_only_when_the_numbers_do():
    big = perturb_notes({}, _lin([1, 1, 1.5, 1], 5.0, [0.17, 0.17, 0.3, 0.87]), "v_7 (bulk)")
    assert "From ε = 10 on it does not: that nudge is 2× the norm of θ_0 itself" in big
    assert "rises from 0.17 to 0.87 nats" in big
    small = perturb_notes({}, _lin([1, 1, 1.5, 1], 100.0, [0.17] * 4), "v_7 (bulk)")
    assert "only 0.1× the norm of θ_0" in small and "do not say why" in small and "rises" not in small
    assert "From ε" not in perturb_notes({}, _lin([1, 1, 1, 1], 5.0), "v_7")


def test_linearity_holds_up_to_the_first_miss():
    assert linear_up_to(_lin([1, 1.001, 1.5, 1])) == 1e-1  # a later recovery does not count
    assert linear_up_to(_lin([1, 1, 1, 1])) == 1e3
    assert linear_up_to(_lin([1.2, 1, 1, 1])) is None


def test_perturb_notes_claim_invisibility_only_when_the_kl_shows_it():
    medians = {"train": {"bulk": 1e-4}, "inverted": {"bulk": 3e-2}, "noise": {"bulk": 1e-1}}
    text = perturb_notes(medians)
    assert "invisible only in distribution" in text and "noise images 1000× as much" in text
    medians["inverted"]["bulk"] = 2e-4
    text = perturb_notes(medians)
    assert "does not show the bulk as invisible" in text and "inverted images 2× as much" in text


def test_perturb_notes_report_linearity_and_subspace_training_as_computed():
    ks = (10, 20, 30)
    text = perturb_notes({}, _lin([1, 1, 1.5, 1]), "v_7 (bulk)",
                         {"bulk": np.array([2.0, 1.9, 1.8]), "complement of bulk": np.array([0.5, 0.4, 0.3])}, ks)
    assert "Retraining along v_7 (bulk) followed J's linear prediction to within 1% up to ε = 0.1" in text
    assert "closest to σ = 1 the test loss ends at 1.900, against 0.400" in text and "does not use" in text
    text = perturb_notes({}, None, "", {"bulk": np.array([0.3] * 3), "complement of bulk": np.array([0.5] * 3)}, ks)
    assert "does not use" not in text


def test_evolution_notes_say_frozen_only_when_the_last_counts_barely_change():
    start = {"chaotic": 0, "bulk": 100, "stable": 0}
    counts = [start, {"chaotic": 10, "bulk": 70, "stable": 20}, {"chaotic": 12, "bulk": 60, "stable": 28},
              {"chaotic": 12, "bulk": 59, "stable": 29}]
    text = evolution_notes([0, 1, 2, 3], counts)
    assert "At epoch 0, all 100 directions are bulk (J = I)." in text
    assert "By epoch 1 training has moved 30 of them out of the bulk, 10 to chaotic and 20 to stable." in text
    assert "shift by only 1: they have frozen" in text
    counts[-1] = {"chaotic": 20, "bulk": 40, "stable": 40}
    assert "still shift by 20: training had not settled" in evolution_notes([0, 1, 2, 3], counts)
    counts[-1] = counts[-2]
    assert "the region counts do not change: they have frozen" in evolution_notes([0, 1, 2, 3], counts)


def test_compare_notes_conclude_only_what_the_overlaps_show():
    mlp = compare_notes({"shuffled labels": 0.82, "noise inputs": 0.31, "seed 1": 0.8, "seed 2": 0.79}, 0.3, 100)
    assert "Noise inputs stays close to random" in mlp and "set by the inputs, not by the labels" in mlp
    assert "Every other seed keeps it" in mlp
    cnn = compare_notes({"shuffled labels": 0.701, "noise inputs": 0.741, "seed 1": 0.626}, 0.35, 100)
    assert "set by the inputs" not in cnn and "close to random" not in cnn
    assert "Even noise inputs keep it (0.741, against 0.701 for shuffled labels)" in cnn
    labels = compare_notes({"shuffled labels": 0.32, "noise inputs": 0.31, "seed 1": 0.31}, 0.3, 10)
    assert "keep a bulk" not in labels and "Every other seed" not in labels and "set by the inputs" not in labels
