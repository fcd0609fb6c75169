"""One setting of an experiment as a form, a URL and a sentence see it (validate.py checks them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One setting: where it lives in an Experiment, its URL key, and how it reads in a sentence and a form."""

    name: str          # the form / dict key, also the attribute name
    group: str         # "model", "data", "train", or "" for Experiment itself
    short: str         # URL query key
    label: str         # sentence subject
    kind: str          # widths, convs, choice, int, float, bool
    choices: tuple = ()
    form: str = ""     # the form widget's label (a network's own settings)
    help: str = ""     # the form widget's help text
    advanced: bool = False     # hidden in classroom mode
    bounds: tuple = (1, None)  # an int's smallest and largest value (None: no limit)
