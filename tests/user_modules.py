"""Small torch.nn modules as a user would write them, importable by path (tests/…:factory) for the CLI and Dask."""
import torch
from torch import nn


def tanh_mlp(hidden: int = 6) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10))


class SmallConv(nn.Module):
    """A conv net on 1×8×8 images, written as a class with its own forward."""

    def __init__(self, channels: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.head = nn.Linear(channels * 4 * 4, 10)

    def forward(self, x):                                       # x (B, 1, 8, 8)
        h = nn.functional.avg_pool2d(torch.tanh(self.conv(x)), 2)  # (B, channels, 4, 4)
        return self.head(h.flatten(1))


def small_conv(channels: int = 2) -> nn.Module:
    return SmallConv(channels)


class Noisy(nn.Module):
    """Adds noise in its forward pass: randomness without a Dropout layer."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, x):
        return self.lin(x + 0.01 * torch.randn_like(x))


class ThroughNumpy(nn.Module):
    """Takes a detour through numpy in its forward: it runs, but no autodiff can follow it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, x):
        return torch.from_numpy(self.lin(x).numpy() ** 2)
