"""Check an experiment, or the raw settings of a web form or a URL, against what this server allows.

`validate` never raises: whatever it is given (NaN, None, '1e400', lists, nested junk), it answers with
an `Experiment` or with sentences a student can act on. It trains nothing and times nothing; the memory
check uses `tj.jacobian.memory_estimate`, and a time estimate is checked only when the caller passes one.

`query_params` / `from_query_params` put an experiment in a URL and read it back bit-exactly.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import networks
from .cnn import conv_text, parse_convs
from .data import DATASETS, INPUTS, LABELS, DataSpec
from .fields import Field
from .limits import Limits
from .losses import LOSSES
from .presets import DTYPES, PRESETS, Experiment
from .train import OPTIMIZERS, SCHEDULES, TrainSpec

__all__ = ["Validation", "validate", "query_params", "from_query_params", "FIELDS",
           "N_TRAIN_MAX", "MAX_LR", "MAX_SEED", "LOSSES", "DEFAULT_BASE"]

N_TRAIN_MAX = 1600       # 1,797 digits less the 197 test images
N_TRAIN_MAX_MNIST = 60_000
MAX_LR = 10.0
MAX_SEED = 2**31 - 1
DEFAULT_BASE = "lecture"  # the preset whose values fill settings a form or a URL leaves out
_MAX_LISTED = 1000       # longer width lists are refused without reading them
_SANE_WIDTH = 10**7      # above this no memory figure is worth printing

_FALLBACK = "These settings could not be checked; please change them and try again."


@dataclass(frozen=True)
class Validation:
    """An experiment that passed every check, or None and the reasons, one sentence each."""

    experiment: Experiment | None
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.experiment is not None and not self.errors

    @property
    def message(self) -> str:
        return " ".join(self.errors)


GENERAL_FIELDS = (
    Field("labels", "data", "labels", "Labels", "choice", LABELS),
    Field("inputs", "data", "inputs", "Inputs", "choice", INPUTS),
    Field("n_train", "data", "n", "The number of training images", "int"),
    Field("variant_seed", "data", "vseed", "The data seed", "int"),
    Field("optimizer", "train", "opt", "Optimizer", "choice", OPTIMIZERS),
    Field("lr", "train", "lr", "Learning rate", "float"),
    Field("momentum", "train", "mom", "Momentum", "float"),
    Field("schedule", "train", "sched", "Schedule", "choice", SCHEDULES),
    Field("epochs", "train", "ep", "Epochs", "int"),
    Field("batch_size", "train", "bs", "Batch size", "int"),
    Field("shuffle", "train", "shuf", "Shuffle", "bool"),
    Field("loss", "train", "loss", "Loss", "choice", LOSSES),
    Field("beta1", "train", "b1", "Adam β1", "float"),
    Field("beta2", "train", "b2", "Adam β2", "float"),
    Field("eps", "train", "eps", "Adam ε", "float"),
    Field("eps_root", "train", "epsr", "Adam ε_root", "float"),
    Field("seed", "", "seed", "Seed", "int"),
    Field("dtype", "", "dtype", "Data type", "choice", tuple(DTYPES)),
)
DEFAULT_FAMILY = networks.family(PRESETS[DEFAULT_BASE].model)
# The default family's settings and the general ones; a link of the default family on the digits names no more.
FIELDS = networks.FAMILIES[DEFAULT_FAMILY].FIELDS + GENERAL_FIELDS
FAMILY = Field("family", "model", "fam", "Network family", "choice", networks.buildable())
DATASET = Field("dataset", "data", "ds", "Dataset", "choice", DATASETS)
_OWN = {name: tuple(f.FIELDS) for name, f in networks.FAMILIES.items() if f.FORM}  # each family's own settings
_EXTRA = tuple({f.name: f for fields in _OWN.values() for f in fields if f.name not in {g.name for g in FIELDS}}.values())
_ALL_FIELDS = FIELDS + (FAMILY, *_EXTRA, DATASET)
_DEFAULTS = {"family": DEFAULT_FAMILY, "dataset": "digits"}
for _name in reversed(list(_OWN)):  # a setting the model has not: its first family's default
    _DEFAULTS.update({f.name: getattr(networks.FAMILIES[_name].DEFAULT, f.name) for f in _OWN[_name]})
_BY_NAME = {f.name: f for f in _ALL_FIELDS}
_GROUPS = {"model": (tuple(f.SPEC for f in networks.FAMILIES.values()), "network"), "data": (DataSpec, "data"),
           "train": (TrainSpec, "training")}
_ALIASES: dict[str, str] = {}
for _f in _ALL_FIELDS:
    for _key in (_f.name, _f.short, f"{_f.group}.{_f.name}" if _f.group else _f.name):
        assert _ALIASES.setdefault(_key, _f.name) == _f.name, _key
_ALIASES.update({"width": "widths", "learning_rate": "lr", "batch": "batch_size"})
_MISSING = object()


# ----------------------------------------------------------------------------------------------- validate

def validate(raw, limits: Limits | None = None, *, base: Experiment | None = None,
             seconds: float | Mapping | None = None) -> Validation:
    """Check an Experiment, or a dict of raw settings (strings or numbers) filled in from `base`.

    Dict keys are the field names (widths, activation, init, optimizer, lr, momentum, schedule, epochs,
    batch_size, seed, dtype, n_train, labels, inputs, shuffle, loss, beta1, beta2, eps, eps_root,
    variant_seed), their URL keys (see FIELDS) or dotted paths ('train.lr'); unknown keys are errors.
    `base` defaults to the lecture preset. `seconds`, when given, is the estimated time for J (a number,
    or `estimate_seconds`'s dict, whose 'jacobian' and 'svd' parts are added) checked against the limit.
    Never raises.
    """
    try:
        limits = limits if isinstance(limits, Limits) else Limits()
        return _validate(raw, limits, base, seconds)
    except Exception:  # the promise is sentences, never a traceback
        return Validation(None, (_FALLBACK,))


def _validate(raw, limits: Limits, base, seconds) -> Validation:
    errors: list[str] = []
    if isinstance(raw, Experiment):
        template, values = raw, _values_of(raw, errors, "The experiment")
    elif isinstance(raw, Mapping):
        template = PRESETS[DEFAULT_BASE] if base is None else base
        if not isinstance(template, Experiment):
            return Validation(None, ("The base experiment is malformed.",))
        values = _values_of(template, errors, "The base experiment")
        given: set[str] = set()
        for key, value in raw.items():
            name = _ALIASES.get(key.strip().lower()) if isinstance(key, str) else None
            if name is None:
                errors.append(f"Unknown setting {_show(key)}.")
                continue
            if name in given:
                errors.append(f"{_BY_NAME[name].label} was given more than once.")
            given.add(name)
            values[name] = value
    else:
        return Validation(None, (f"The settings must be an experiment or a table of names and values; "
                                 f"got {_show(raw)}.",))

    parsed = {}
    mnist = isinstance(values.get("dataset"), str) and values["dataset"].strip().lower() == "mnist"
    for f in _ALL_FIELDS:
        value = values.get(f.name, _MISSING)
        if value is _MISSING:
            continue  # its group was malformed, already reported
        result = _check(f, value, limits, N_TRAIN_MAX_MNIST if mnist else N_TRAIN_MAX)
        if isinstance(result, _Error):
            errors.append(result.text)
        else:
            parsed[f.name] = result
    family = networks.FAMILIES[parsed.get("family", DEFAULT_FAMILY)]
    dataset = parsed.get("dataset", "digits")
    spec, problems = _family_spec(family, parsed, dataset, limits)
    errors += problems
    errors += _cross_checks(parsed, spec if spec is not None else _size_spec(family, values, parsed, dataset),
                            limits, seconds)
    if errors:
        return Validation(None, tuple(errors))
    return Validation(_build(template, parsed, spec), ())


def _values_of(exp: Experiment, errors: list[str], who: str) -> dict:
    """Every field's raw value in an Experiment; a malformed group is one error and no values."""
    values = {}
    for f in _ALL_FIELDS:
        owner = exp
        if f.group:
            owner = getattr(exp, f.group, None)
            cls, words = _GROUPS[f.group]
            if not isinstance(owner, cls):
                message = f"{who}'s {words} settings are malformed."
                if message not in errors:
                    errors.append(message)
                continue
        values[f.name] = getattr(owner, f.name, _DEFAULTS.get(f.name))
    return values


class _Error:
    def __init__(self, text: str):
        self.text = text


def _check(f: Field, value, limits: Limits, n_train_max: int = N_TRAIN_MAX):
    """The clean value of one field, or an _Error."""
    got = _show(value)
    if f.kind == "choice":
        text = value.strip().lower() if isinstance(value, str) else None
        if text in f.choices:
            return text
        return _Error(f"{f.label} must be one of {_one_of(f.choices)}; got {got}.")
    if f.kind == "bool":
        b = _as_bool(value)
        return _Error(f"{f.label} must be true or false; got {got}.") if b is None else b
    if f.kind == "widths":
        return _check_widths(value, limits, f.label)
    if f.kind == "convs":
        return _check_convs(value, limits)
    if f.kind == "int":
        lo, hi = {"n_train": (1, n_train_max), "epochs": (1, limits.max_epochs), "batch_size": (1, None),
                  "seed": (0, MAX_SEED), "variant_seed": (0, MAX_SEED)}.get(f.name, f.bounds)
        n = _as_int(value)
        if n is None or n < lo or (hi is not None and n > hi):
            span = f"of at least {lo:,}" if hi is None else f"from {lo:,} to {hi:,}"
            return _Error(f"{f.label} must be a whole number {span}; got {got}.")
        return n
    # floats
    x = _as_float(value)
    if f.name == "lr":
        if x is None or math.isnan(x) or x <= 0:
            return _Error(f"Learning rate must be a positive number; got {got}.")
        if x > MAX_LR:
            shown = f"{x:g}" if math.isfinite(x) else got
            return _Error(f"Learning rate must be at most {MAX_LR:g}: larger ones blow training up at once "
                          f"(the paper uses 0.1 with SGD, 0.003 with Adam); got {shown}.")
        return x
    if f.name in ("momentum", "beta1", "beta2"):
        if x is None or not (0 <= x < 1):
            return _Error(f"{f.label} must be a number from 0 up to, but not including, 1; got {got}.")
        return x
    if f.name == "eps":
        if x is None or not (0 < x < math.inf):
            return _Error(f"{f.label} must be a positive number; got {got}.")
        return x
    if f.name == "eps_root":
        if x is None or not (0 <= x < math.inf):
            return _Error(f"{f.label} must be zero or a positive number; got {got}.")
        return x
    raise AssertionError(f.name)  # pragma: no cover


def _check_widths(value, limits: Limits, label: str = "Hidden widths"):
    widths = _as_widths(value)
    if widths is None:
        return _Error(f"{label} must be whole numbers separated by commas, like '64' or '32, 16'; "
                      f"got {_show(value)}.")
    if len(widths) > limits.max_depth:
        layers = "1 hidden layer is" if limits.max_depth == 1 else f"{limits.max_depth} hidden layers are"
        return _Error(f"At most {layers} allowed; got {len(widths):,}.")
    bad = next((w for w in widths if not 1 <= w <= limits.max_width), None)
    if bad is not None:
        return _Error(f"Every hidden width must be a whole number from 1 to {limits.max_width:,}; "
                      f"got {_show(bad)}.")
    return widths


def _check_convs(value, limits: Limits):
    convs = parse_convs(value)
    if convs is None:
        return _Error("Convolution layers must read like '4x3 same pool2, 8x3 valid' (channels × kernel, SAME or "
                      f"VALID padding, optional pooling); got {_show(value)}.")
    if not 1 <= len(convs) <= limits.max_depth:
        return _Error(f"Give from 1 to {limits.max_depth} convolution layers; got {len(convs)}.")
    bad = next((c for c in convs if not 1 <= c.channels <= limits.max_width), None)
    if bad is not None:
        return _Error(f"Every convolution needs from 1 to {limits.max_width:,} channels; got {bad.channels:,}.")
    return convs


def _family_spec(family, p: dict, dataset: str, limits: Limits):
    """The family's spec from the checked settings and what is wrong with it; (None, []) while a setting failed."""
    if any(f.name not in p for f in family.FIELDS):
        return None, []
    try:
        spec = family.from_settings(p, dataset)
    except Exception:
        return None, [_FALLBACK]
    problems = family.problems(spec, dataset, limits)
    return (None if problems else spec), problems


def _size_spec(family, values: dict, p: dict, dataset: str):
    """A spec for the memory figure when a setting failed only a server limit (a width over the limit, say);
    None otherwise or when even that is absurd."""
    sane = dict(p)
    for f in family.FIELDS:
        if f.name not in sane and f.kind == "widths":
            sane[f.name] = _widths_for_size(values.get(f.name, _MISSING))
    if any(sane.get(f.name) is None for f in family.FIELDS):
        return None
    try:
        spec = family.from_settings(sane, dataset)
        return spec if not family.problems(spec, dataset, None) else None
    except Exception:
        return None


def _widths_for_size(value):
    """Widths usable for the memory figure even when over the width limit (absurd ones excepted)."""
    try:
        widths = _as_widths(value) if value is not _MISSING else None
    except Exception:
        return None
    if widths is None or not all(1 <= w <= _SANE_WIDTH for w in widths):
        return None
    return widths


def _cross_checks(p: dict, spec, limits: Limits, seconds) -> list[str]:
    """Checks across fields, on the fields that passed their own checks."""
    errors = []
    bs, n, epochs = p.get("batch_size"), p.get("n_train"), p.get("epochs")
    batches_ok = bs is not None and n is not None and bs <= n
    if bs is not None and n is not None and bs > n:
        errors.append(f"Batch size {_show(bs)} is larger than the {n:,} training images.")
    steps = epochs * (n // bs) if batches_ok and epochs is not None else None
    if steps is not None and steps > limits.max_steps:
        errors.append(f"That is {steps:,} training steps ({epochs:,} epochs × {n // bs:,} batches); this server "
                      f"allows {limits.max_steps:,} — use fewer epochs or a larger batch size.")
    if spec is not None and "dtype" in p and "n_train" in p:
        errors += _size_checks(spec, p, steps if steps is not None and steps <= limits.max_steps else None, limits)
    if seconds is not None:
        errors += _time_check(seconds, limits)
    return errors


def _size_checks(spec, p: dict, steps, limits: Limits) -> list[str]:
    from .jacobian import memory_estimate  # imported here: other modules import this one cheaply

    n_params = spec.n_params
    cluster = (" The command line can still compute it, in column blocks on a cluster "
               "(python -m tj jacobian --store J.zarr).")
    if steps is not None and "optimizer" in p:  # the whole run is known
        probe = Experiment(spec, DataSpec(n_train=p["n_train"], dataset=p.get("dataset", "digits")),
                           TrainSpec(optimizer=p["optimizer"], epochs=p["epochs"], batch_size=p["batch_size"]),
                           dtype=p["dtype"])
    else:  # count J, its SVD and the tangents only
        probe = Experiment(spec, DataSpec(n_train=1), TrainSpec(epochs=0, batch_size=1), dtype=p["dtype"])
    try:
        parts = memory_estimate(probe)
        total, j_svd = sum(parts.values()), parts.get("jacobian", 0) + parts.get("svd", 0)
    except Exception:  # an engine change must not break validation: J in its dtype + the float64 SVD
        j_svd = total = n_params * n_params * (DTYPES[p["dtype"]].itemsize + 40)
    allowed = limits.max_jacobian_bytes
    if j_svd > allowed:
        in_all = f" ({_bytes(total)} in all with the recorded run)" if total > 1.1 * j_svd else ""
        return [f"P = {n_params:,} needs {_bytes(j_svd)} for J and its SVD{in_all}; this server allows "
                f"{_bytes(allowed)} — make the network narrower.{cluster}"]
    if total > allowed:
        return [f"This run needs {_bytes(total)}, mostly to record its {steps:,} training steps; this server "
                f"allows {_bytes(allowed)} — use fewer epochs or a larger batch size."]
    if n_params > limits.max_params:
        return [f"P = {n_params:,} parameters is more than this server's limit of {limits.max_params:,} — "
                f"make the network narrower."]
    return []


def _time_check(seconds, limits: Limits) -> list[str]:
    try:
        if isinstance(seconds, Mapping):
            parts = [seconds[k] for k in ("jacobian", "svd") if k in seconds] or list(seconds.values())
            seconds = sum(float(s) for s in parts)
        seconds = float(seconds)
    except Exception:
        return []  # no usable estimate: nothing to check
    if math.isfinite(seconds) and seconds > limits.max_seconds:
        return [f"Computing J would take about {_duration(seconds)} on this server; it allows "
                f"{_duration(limits.max_seconds)} — make the network narrower or train for fewer steps."]
    return []


def _build(template: Experiment, p: dict, spec) -> Experiment:
    """The checked values in the template's classes (keeping any fields this module does not know)."""
    groups = {"model": spec}
    for group, (cls, _) in _GROUPS.items():
        if group == "model":
            continue
        sub = {f.name: p[f.name] for f in _ALL_FIELDS if f.group == group}
        current = getattr(template, group, None)
        groups[group] = dataclasses.replace(current, **sub) if isinstance(current, cls) else cls(**sub)
    return dataclasses.replace(template, **groups, seed=p["seed"], dtype=p["dtype"])


# ------------------------------------------------------------------------------------------- URL params

def as_text(f: Field, value) -> str:
    """A widths or convs setting as a form shows it: '32, 16', 'none', '4x3 same pool2'."""
    if f.kind == "convs":
        return conv_text(value)
    return ", ".join(str(int(w)) for w in value) or "none"


def _encode(f: Field, value) -> str:
    if f.kind == "widths":
        return ",".join(str(int(w)) for w in value) or "none"
    if f.kind == "convs":
        return conv_text(value).replace(", ", ",")
    if f.kind == "float":
        return repr(float(value))
    if f.kind == "int":
        return str(int(value))
    if f.kind == "bool":
        return "1" if value else "0"
    return str(value)


def _encoded(exp: Experiment) -> dict[str, str]:
    """Every setting of the experiment's family and the general ones; the family and the dataset only when they
    are not the default's, so a link of the default family on the digits stays as it was before other families."""
    family = networks.family(exp.model)
    own = {f.name for f in networks.FAMILIES[family].FIELDS}
    out = {}
    for f in _ALL_FIELDS:
        owner = getattr(exp, f.group) if f.group else exp
        if f in _EXTRA and f.name not in own:
            continue
        if f in (FAMILY, DATASET) and family == DEFAULT_FAMILY and exp.data.dataset == "digits":
            continue
        value = family if f is FAMILY else getattr(owner, f.name, _DEFAULTS.get(f.name))
        out[f.short] = _encode(f, value)
    return out


def query_params(exp: Experiment, compact: bool = False) -> dict[str, str]:
    """URL query parameters for an experiment (floats by repr, so reading them back is bit-exact).

    compact=True names the nearest preset ('preset': name) and lists only the settings that differ from it.
    """
    full = _encoded(exp)
    if not compact:
        return full
    best, best_diff = None, None
    for name, p in PRESETS.items():
        if networks.family(p.model) != networks.family(exp.model):
            continue
        ref = _encoded(p)
        diff = {k: v for k, v in full.items() if ref[k] != v}
        if best_diff is None or len(diff) < len(best_diff):
            best, best_diff = name, diff
    return {"preset": best, **best_diff}


def from_query_params(params: Mapping, base: Experiment | None = None, limits: Limits | None = None,
                      *, seconds: float | Mapping | None = None) -> Validation:
    """Read query_params(...) back, through `validate`. Never raises.

    Values may be strings or lists of strings (the last one counts). A 'preset' key picks the base;
    otherwise missing settings come from `base` (default: the lecture preset). Keys this module does not
    know are ignored: a page's URL may carry others.
    """
    try:
        if not isinstance(params, Mapping):
            return Validation(None, ("The link's settings could not be read.",))
        errors, raw = [], {}
        for key, value in params.items():
            if not isinstance(key, str):
                continue
            key = key.strip().lower()
            if isinstance(value, (list, tuple)):
                if not value:
                    continue
                value = value[-1]
            if key == "preset":
                name = value.strip().lower() if isinstance(value, str) else None
                if name in PRESETS:
                    base = PRESETS[name]
                else:
                    errors.append(f"Preset must be one of {_one_of(tuple(PRESETS))}; got {_show(value)}.")
            elif key in _ALIASES:
                raw[key] = value
        result = validate(raw, limits, base=base, seconds=seconds)
        if errors:
            return Validation(None, tuple(errors) + result.errors)
        return result
    except Exception:
        return Validation(None, (_FALLBACK,))


# --------------------------------------------------------------------------------------------- parsing

def _as_int(value):
    """A Python int from an int, an integral finite float, or such a string; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                value = float(text)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
            x = float(value)
            return int(x) if math.isfinite(x) and x.is_integer() else None
        if type(value).__name__.startswith("bool"):  # numpy.bool_
            return None
        return operator.index(value)  # numpy / torch integers
    except Exception:
        return None


def _as_float(value):
    """A float (±inf for numbers too large) from a real number or a numeric string; None otherwise."""
    if isinstance(value, bool) or value is None or type(value).__name__.startswith("bool"):
        return None
    try:
        if isinstance(value, str):
            return float(value.strip())
        if isinstance(value, int):
            try:
                return float(value)
            except OverflowError:
                return math.inf if value > 0 else -math.inf
        if isinstance(value, (numbers.Real, float)) or hasattr(value, "__float__"):
            if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
                return None
            return float(value)
        return None
    except Exception:
        return None


def _as_bool(value):
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on", "t", "y"):
            return True
        if text in ("0", "false", "no", "off", "f", "n"):
            return False
    return None


_SEPARATORS = re.compile(r"[,;\s→]+")


def _as_widths(value):
    """A tuple of ints from '64', '32, 16', '(32, 16)', 'none', 64, or a list/tuple of such; None otherwise."""
    if isinstance(value, str):
        text = value.strip().strip("()[]").strip()
        if text.lower() in ("", "none", "-"):
            return ()
        parts = [s for s in _SEPARATORS.split(text) if s]
        if len(parts) > _MAX_LISTED:
            return None
        items = [_as_int(s) for s in parts]
    elif isinstance(value, (list, tuple)):
        if len(value) > _MAX_LISTED:
            return None
        items = [_as_int(v) for v in value]
    else:
        items = [_as_int(value)]
    if any(i is None for i in items):
        return None
    return tuple(items)


# ---------------------------------------------------------------------------------------------- wording

def _show(value) -> str:
    """A short, safe rendering of what the user gave, for 'got …'."""
    try:
        if value is None:
            return "nothing"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            if len(value) > 30:
                r = repr(value[:30])
                return f"{r[:-1]}…{r[-1]}"
            return repr(value)
        if isinstance(value, int):
            if value.bit_length() > 70:
                digits = int(value.bit_length() * math.log10(2)) + 1
                return f"a {digits:,}-digit number"
            return str(value)
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, (list, tuple)):
            kind = "list" if isinstance(value, list) else "tuple"
            simple = all(isinstance(v, (str, float, bool, type(None))) and (not isinstance(v, str) or len(v) < 12)
                         or (isinstance(v, int) and v.bit_length() < 64) for v in value)
            if len(value) <= 6 and simple:
                text = repr(value)
                if len(text) <= 50:
                    return text
            return f"a {kind} of {len(value):,} item{'' if len(value) == 1 else 's'}"
        if isinstance(value, Mapping):
            return "a table of values"
        if isinstance(value, BaseException):
            return "an error"
        if isinstance(value, (bytes, bytearray)):
            return "some bytes"
        if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
            return "a complex number"
        if isinstance(value, numbers.Number):
            text = str(value)
            return text if len(text) <= 30 else "a long number"
        return "a value of another kind"
    except Exception:
        return "an unreadable value"


def _one_of(choices: tuple) -> str:
    items = [str(c) for c in choices]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _bytes(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:,.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:,.0f} MB"
    return f"{n / 1e3:,.0f} kB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} minutes"
    return f"{s / 3600:,.1f} hours"
