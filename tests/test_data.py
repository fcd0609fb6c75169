import numpy as np
import torch

from tj import DataSpec, load, out_of_distribution
from tj.data import dead_pixels, paper_split, raw_digits


def test_paper_split_sizes_and_order():
    train, test = paper_split()
    assert len(train) == 1600 and len(test) == 197
    perm = np.random.RandomState(0).permutation(1797)
    assert (test == perm[:197]).all() and (train == perm[197:]).all()
    pixels, labels = raw_digits()
    assert pixels.shape == (1797, 64) and pixels.dtype == np.uint8 and pixels.max() == 16
    assert len(labels) == 1797 and set(labels.tolist()) == set(range(10))


def test_pixels_scaled_and_dead_pixels():
    d = load()
    assert d.x_train.shape == (1600, 64) and d.x_test.shape == (197, 64)
    assert d.x_train.min() == 0 and d.x_train.max() == 1
    assert dead_pixels(d.x_train).tolist() == [0, 32, 39]


def test_variants_are_seeded():
    base = load()
    shuf = load(DataSpec(labels="shuffled", variant_seed=3))
    assert torch.equal(torch.sort(shuf.y_train).values, torch.sort(base.y_train).values)
    assert (shuf.y_train != base.y_train).float().mean() > 0.8
    assert torch.equal(shuf.y_train, load(DataSpec(labels="shuffled", variant_seed=3)).y_train)
    noise = load(DataSpec(inputs="uniform"))
    assert noise.x_train.min() >= 0 and noise.x_train.max() < 1 and len(dead_pixels(noise.x_train)) == 0
    assert torch.equal(noise.x_test, base.x_test)
    assert len(load(DataSpec(n_train=100)).y_train) == 100


def test_out_of_distribution_sets():
    d = load()
    sets = out_of_distribution(d)
    assert torch.equal(sets["inverted"], 1 - d.x_test)
    assert sets["noise"].shape == d.x_test.shape and abs(sets["noise"].std().item() - 1) < 0.05
