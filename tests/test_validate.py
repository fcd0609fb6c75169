"""tj.validate and tj.limits: never a traceback, always a sentence; URL round trips; server limits from env."""
import builtins
import importlib
import math
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tj
from tj import DataSpec, Experiment, MLPSpec, TrainSpec
from tj.data import INPUTS, LABELS
from tj.limits import Limits
from tj.activations import ACTIVATIONS
from tj.mlp import INITS
from tj.presets import DTYPES
from tj.train import OPTIMIZERS, SCHEDULES
from tj.validate import FIELDS, LOSSES, MAX_SEED, Validation, from_query_params, query_params, validate

EXCEPTION_NAMES = sorted(n for n in dir(builtins)
                         if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException))
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# a generous server, for properties about encoding rather than about limits
ROOMY = Limits(max_params=10**9, max_jacobian_bytes=10**15, max_steps=10**9)


def assert_readable(v):
    """A Validation whose errors are plain sentences: no tracebacks, no exception class names."""
    assert isinstance(v, Validation)
    assert isinstance(v.errors, tuple)
    assert v.ok == (v.experiment is not None) == (not v.errors)
    if v.ok:
        assert isinstance(v.experiment, Experiment)
    for e in v.errors:
        assert isinstance(e, str) and e.strip(), v.errors
        assert e[0].isupper(), e
        assert e.endswith("."), e
        assert len(e) < 400, e
        assert "Traceback" not in e, e
        assert not [n for n in EXCEPTION_NAMES if n in e], e


# --------------------------------------------------------------------------------------------- strategies
# No capital letters in generated text, so an exception's name can only come from validate itself.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Lu", "Lt", "Cs")), max_size=12)
SPECIAL = st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "", "   ", "0", "-1",
                           "1e6", "1e-400", "0x10", "None", "null", "[]", "{}", "64,,", "1.5", "٣",
                           "\x00", "true", "32 16", "(64,)", "3.0", "1_000", "--1", "∞"])
SPECIAL = SPECIAL | st.builds(lambda: "1" * 5000)  # past int()'s 4,300-digit limit
LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
                 st.floats(), TEXT, SPECIAL, st.binary(max_size=4), st.complex_numbers(), st.decimals(),
                 st.fractions(), st.just(object()), st.just(ValueError("boom")), st.just(Decimal("sNaN")))
JUNK = st.recursive(LEAF, lambda c: st.lists(c, max_size=3) | st.tuples(c, c) | st.dictionaries(TEXT, c, max_size=3),
                    max_leaves=8)


def as_text(s):
    return st.one_of(s, s.map(str))


def choice(options):
    return st.one_of(st.sampled_from(options), st.sampled_from(options).map(lambda c: f" {c.upper()} "))


VALID = {
    "widths": st.one_of(st.lists(st.integers(1, 32), max_size=3).map(tuple), st.integers(1, 32),
                        st.lists(st.integers(1, 32), min_size=1, max_size=3).map(lambda w: ", ".join(map(str, w)))),
    "activation": choice(ACTIVATIONS), "init": choice(INITS), "labels": choice(LABELS),
    "inputs": choice(INPUTS), "optimizer": choice(OPTIMIZERS), "schedule": choice(SCHEDULES),
    "loss": choice(LOSSES), "dtype": choice(tuple(DTYPES)),
    "n_train": as_text(st.integers(400, 1600)), "variant_seed": as_text(st.integers(0, MAX_SEED)),
    "lr": as_text(st.floats(1e-6, 10)), "momentum": as_text(st.floats(0, 0.99)),
    "epochs": as_text(st.integers(1, 10)), "batch_size": as_text(st.integers(16, 400)),
    "shuffle": st.one_of(st.booleans(), st.sampled_from(["true", "false", "0", "1", "yes", "off"])),
    "beta1": st.floats(0, 0.99), "beta2": st.floats(0, 0.999), "eps": st.floats(1e-12, 1.0),
    "eps_root": st.floats(0, 1.0), "seed": as_text(st.integers(0, MAX_SEED)),
}

NOT_A_NUMBER = st.one_of(st.none(), st.sampled_from(["abc", "", " ", "nan", "NaN", "ten", "[]", "0x10", "∞", "1e"]),
                         st.lists(st.integers(), min_size=1, max_size=2),
                         st.dictionaries(TEXT, st.integers(), max_size=2),
                         st.binary(max_size=3), st.complex_numbers().filter(lambda z: z.imag != 0),
                         st.just(object()), st.just(float("nan")), st.just(Decimal("sNaN")))
NOT_WHOLE = st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer()))


def bad_int(lo, hi=None):
    out = [st.integers(max_value=lo - 1), st.integers(max_value=lo - 1).map(str), NOT_A_NUMBER, NOT_WHOLE,
           NOT_WHOLE.map(repr), st.sampled_from(["1e400", "-1e400", "inf", "1.5", "1" * 5000])]
    if hi is not None:
        out += [st.integers(min_value=hi + 1), st.integers(min_value=hi + 1).map(str),
                st.integers(min_value=10**30, max_value=10**400)]
    return st.one_of(*out)


def bad_choice(options):
    return st.one_of(TEXT.filter(lambda s: s.strip().lower() not in options), NOT_A_NUMBER,
                     st.integers(), st.booleans(), st.sampled_from(["gelu", "relu6", "softmax", "float16", "SGD!"]))


def bad_unit_interval():  # momentum and Adam's betas live in [0, 1)
    return st.one_of(st.floats(min_value=1.0), st.floats(max_value=-1e-12), NOT_A_NUMBER, st.just(1),
                     st.sampled_from(["1", "1.0", "-0.5", "inf", "1e400"]))


BAD = {
    "widths": st.one_of(
        st.lists(st.integers(max_value=0), min_size=1, max_size=3).map(tuple),
        st.tuples(st.integers(513, 10**6)), st.tuples(st.integers(min_value=10**9, max_value=10**400)),
        st.lists(st.integers(1, 8), min_size=5, max_size=40).map(tuple),
        st.lists(NOT_WHOLE, min_size=1, max_size=3), st.lists(st.none(), min_size=1, max_size=2),
        st.sampled_from(["abc", "0", "-5", "1e400", "nan", "32,,x", "4000", "64, 64, 64, 64, 64", "3.5", "∞"]),
        st.none(), st.integers(max_value=0), st.dictionaries(TEXT, st.integers(), min_size=1, max_size=2),
        st.just(object()), st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer() and 1 <= x <= 512)),
    ),
    "activation": bad_choice(ACTIVATIONS), "init": bad_choice(INITS), "labels": bad_choice(LABELS),
    "inputs": bad_choice(INPUTS), "optimizer": bad_choice(OPTIMIZERS), "schedule": bad_choice(SCHEDULES),
    "loss": bad_choice(LOSSES), "dtype": bad_choice(tuple(DTYPES)),
    "n_train": bad_int(1, 1600), "variant_seed": bad_int(0, MAX_SEED), "epochs": bad_int(1, 200),
    "batch_size": st.one_of(bad_int(1), st.integers(1601, 10**6)), "seed": bad_int(0, MAX_SEED),
    "lr": st.one_of(st.floats(max_value=0.0), st.floats(min_value=10.0, exclude_min=True), NOT_A_NUMBER,
                    st.sampled_from(["0", "-0.1", "1e6", "1e400", "inf", "-inf", "nan"]), st.integers(max_value=0),
                    st.integers(min_value=11, max_value=10**400)),
    "momentum": bad_unit_interval(), "beta1": bad_unit_interval(), "beta2": bad_unit_interval(),
    "eps": st.one_of(st.floats(max_value=0.0), NOT_A_NUMBER, st.sampled_from(["0", "-1e-8", "inf"])),
    "eps_root": st.one_of(st.floats(max_value=-1e-300), NOT_A_NUMBER, st.sampled_from(["-1", "inf"])),
    "shuffle": st.one_of(TEXT.filter(lambda s: s.strip().lower() not in
                                     {"1", "0", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n"}),
                         st.integers().filter(lambda i: i not in (0, 1)), st.floats(), st.none()),
}
assert set(VALID) == set(BAD) == {f.name for f in FIELDS}
ALIASES = {f.name: {f.name, f.short, f"{f.group}.{f.name}" if f.group else f.name} for f in FIELDS}
KEYS = {name: st.sampled_from(sorted(keys)) for name, keys in ALIASES.items()}


FORM_KEYS = st.one_of(TEXT, st.sampled_from(sorted({k for keys in ALIASES.values() for k in keys})))


def any_value(name):
    return st.one_of(VALID[name], BAD[name], JUNK)


@st.composite
def bad_configs(draw):
    """A form's worth of settings, each left out, valid, invalid or junk, with at least one surely invalid."""
    cfg = {}
    for f in FIELDS:
        how = draw(st.sampled_from(["omit", "valid", "valid", "bad", "junk"]))
        if how != "omit":
            cfg[draw(KEYS[f.name])] = draw({"valid": VALID, "bad": BAD}[how][f.name] if how != "junk" else JUNK)
    forced = draw(st.sampled_from([f.name for f in FIELDS]))
    for key in ALIASES[forced] & set(cfg):
        del cfg[key]
    cfg[draw(KEYS[forced])] = draw(BAD[forced])
    return cfg


@st.composite
def junk_experiments(draw):
    """Experiment objects whose fields are anything at all (dataclasses check no types)."""
    def part(cls, group):
        names = [f.name for f in FIELDS if f.group == group]
        kwargs = {n: draw(any_value(n)) for n in names if draw(st.booleans())}
        return draw(st.one_of(st.just(cls(**kwargs)), JUNK))
    return Experiment(part(MLPSpec, "model"), part(DataSpec, "data"), part(TrainSpec, "train"),
                      draw(any_value("seed")), draw(any_value("dtype")))


@st.composite
def valid_experiments(draw, max_width=32):
    n = draw(st.integers(1, 1600))
    bs = draw(st.integers(1, n))
    unit = st.floats(0, 1, exclude_max=True)
    return Experiment(
        MLPSpec(tuple(draw(st.lists(st.integers(1, max_width), max_size=4))), draw(st.sampled_from(ACTIVATIONS)),
                draw(st.sampled_from(INITS))),
        DataSpec(draw(st.sampled_from(LABELS)), draw(st.sampled_from(INPUTS)), draw(st.integers(0, MAX_SEED)), n),
        TrainSpec(optimizer=draw(st.sampled_from(OPTIMIZERS)), lr=draw(st.floats(0, 10, exclude_min=True)),
                  momentum=draw(unit), schedule=draw(st.sampled_from(SCHEDULES)),
                  epochs=draw(st.integers(1, 200)), batch_size=bs, shuffle=draw(st.booleans()),
                  loss=draw(st.sampled_from(LOSSES)), beta1=draw(unit), beta2=draw(unit),
                  eps=draw(st.floats(min_value=0, exclude_min=True, allow_infinity=False)),
                  eps_root=draw(st.floats(min_value=0, allow_infinity=False))),
        seed=draw(st.integers(0, MAX_SEED)), dtype=draw(st.sampled_from(tuple(DTYPES))))


# --------------------------------------------------------------------------------------------- properties

@MANY
@given(bad_configs())
def test_bad_configs_get_sentences_never_exceptions(cfg):
    v = validate(cfg)
    assert_readable(v)
    assert not v.ok and v.experiment is None and v.errors


@MANY
@given(st.one_of(JUNK, junk_experiments(), st.dictionaries(FORM_KEYS, JUNK, max_size=6)), st.one_of(st.none(), JUNK))
def test_anything_at_all_gets_a_validation(raw, base):
    assert_readable(validate(raw))
    assert_readable(validate(raw, base=base))
    assert_readable(validate(raw, seconds=base))
    assert_readable(from_query_params(raw if not isinstance(raw, Experiment) else {}, base=base))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted({k for f in FIELDS for k in (f.short, f.name)} | {"preset", "page"})),
                       st.one_of(TEXT, SPECIAL, st.lists(st.one_of(TEXT, SPECIAL), max_size=3)), max_size=10))
def test_query_params_of_any_text_never_raise(params):
    assert_readable(from_query_params(params))


@settings(max_examples=200, deadline=None)
@given(valid_experiments(max_width=512), st.booleans(), st.booleans())
def test_query_params_round_trip_exactly(exp, compact, as_lists):
    assert validate(exp, ROOMY).experiment == exp
    params = query_params(exp, compact=compact)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    if as_lists:  # what st.query_params.get_all / urllib.parse.parse_qs give
        params = {k: ["ignored", v] for k, v in params.items()}
    params["page"] = "jacobian"  # a page's own parameter is ignored
    for base in (None, tj.preset("paper")):
        back = from_query_params(params, base=base, limits=ROOMY)
        assert back.ok, back.errors
        assert back.experiment == exp
        assert back.experiment.to_json() == exp.to_json()  # bit-exact floats, same types
        assert back.experiment.train.lr.hex() == exp.train.lr.hex()


@settings(max_examples=100, deadline=None)
@given(valid_experiments(max_width=8))
def test_small_valid_configs_pass_the_default_limits_as_dicts_of_strings(exp):
    per_epoch = exp.data.n_train // exp.train.batch_size
    exp = exp.replace(**{"train.epochs": max(1, min(exp.train.epochs, 20_000 // per_epoch))})
    form = {f.name: v for f, v in zip(FIELDS, query_params(exp).values())}
    v = validate(form)
    assert v.ok, v.errors
    assert v.experiment == exp


# ---------------------------------------------------------------------------------------- hand-picked

@pytest.mark.parametrize("raw, phrase", [
    ({"widths": "0"}, "Every hidden width must be a whole number from 1 to 512; got 0."),
    ({"widths": (0,)}, "from 1 to 512"),
    ({"widths": "32, 0"}, "got 0."),
    ({"lr": -0.1}, "Learning rate must be a positive number; got -0.1."),
    ({"lr": "abc"}, "Learning rate must be a positive number; got 'abc'."),
    ({"lr": 0}, "Learning rate must be a positive number"),
    ({"lr": 1e6}, "Learning rate must be at most 10"),
    ({"lr": "1e6"}, "got 1e+06."),
    ({"lr": "1e400"}, "Learning rate must be at most 10"),
    ({"lr": "nan"}, "Learning rate must be a positive number; got 'nan'."),
    ({"lr": float("nan")}, "got nan."),
    ({"lr": None}, "Learning rate must be a positive number; got nothing."),
    ({"batch_size": 2000}, "Batch size 2000 is larger than the 1,600 training images."),
    ({"batch_size": "500", "n_train": "400"}, "Batch size 500 is larger than the 400 training images."),
    ({"widths": (4000,)}, "P = 300,010 needs"),
    ({"widths": (4000,)}, "this server allows 2.0 GB — make the network narrower."),
    ({"widths": "100"}, "P = 7,510 needs"),
    ({"widths": (10**400,)}, "got a 401-digit number."),
    ({"widths": "abc"}, "Hidden widths must be whole numbers separated by commas"),
    ({"widths": None}, "Hidden widths must be whole numbers separated by commas, like '64' or '32, 16'; got nothing."),
    ({"widths": "8,8,8,8,8"}, "At most 4 hidden layers are allowed; got 5."),
    ({"epochs": 0}, "Epochs must be a whole number from 1 to 200; got 0."),
    ({"epochs": "2.5"}, "Epochs must be a whole number"),
    ({"epochs": 1000}, "from 1 to 200; got 1000."),
    ({"epochs": 150, "batch_size": 8}, "That is 30,000 training steps (150 epochs × 200 batches)"),
    ({"seed": -1}, "Seed must be a whole number from 0 to 2,147,483,647; got -1."),
    ({"seed": "nan"}, "Seed must be a whole number"),
    ({"activation": "swish"}, "Activation must be one of gelu_tanh, gelu_erf, relu or tanh; got 'swish'."),
    ({"optimizer": "rmsprop"}, "Optimizer must be one of sgd or adam; got 'rmsprop'."),
    ({"dtype": "float16"}, "Data type must be one of float32 or float64"),
    ({"labels": "random"}, "Labels must be one of true or shuffled"),
    ({"inputs": None}, "Inputs must be one of digits or uniform; got nothing."),
    ({"momentum": 1}, "Momentum must be a number from 0 up to, but not including, 1; got 1."),
    ({"n_train": 0}, "The number of training images must be a whole number from 1 to 1,600; got 0."),
    ({"shuffle": "maybe"}, "Shuffle must be true or false; got 'maybe'."),
    ({"learning rate": 0.1}, "Unknown setting 'learning rate'."),
    ({"lr": 0.1, "train.lr": 0.2}, "Learning rate was given more than once."),
    (None, "The settings must be an experiment or a table of names and values; got nothing."),
    ([1, 2], "got [1, 2]."),
    (Experiment(model="wide"), "The experiment's network settings are malformed."),
    (Experiment(train=TrainSpec(lr=float("inf"))), "Learning rate must be at most 10"),
])
def test_hand_picked_mistakes(raw, phrase):
    v = validate(raw)
    assert_readable(v)
    assert not v.ok
    assert any(phrase in e for e in v.errors), v.errors


def test_too_many_steps_and_too_much_time():
    v = validate({"epochs": 200, "batch_size": 8})
    assert v.errors == ("That is 40,000 training steps (200 epochs × 200 batches); this server allows 20,000 — "
                        "use fewer epochs or a larger batch size.",)
    assert validate({}, seconds=599).ok
    slow = validate({}, seconds=1800)
    assert slow.errors == ("Computing J would take about 30 minutes on this server; it allows 10 minutes — make the "
                           "network narrower or train for fewer steps.",)
    assert not validate({}, seconds={"train": 1.0, "jacobian": 900.0, "svd": 1.0}).ok
    assert validate({}, seconds={"train": 900.0, "jacobian": 10.0, "svd": 1.0}).ok  # training is inside 'jacobian'
    for junk in (float("nan"), "soon", [1], {"jacobian": "x"}):
        assert validate({}, seconds=junk).ok


def test_one_mistake_per_field_all_reported():
    v = validate({"widths": "0", "lr": "x", "epochs": 0, "seed": -1, "activation": "?"})
    assert len(v.errors) == 5
    assert [e.split()[0] for e in v.errors] == ["Every", "Activation", "Learning", "Epochs", "Seed"]


def test_presets_and_form_strings_are_valid():
    cluster = Limits(max_params=10**6, max_jacobian_bytes=10**12)  # lenet5's dense J needs a cluster
    for name, exp in tj.PRESETS.items():
        limits = cluster if name == "lenet5" else None
        v = validate(exp, limits)
        assert v.ok, (name, v.errors)
        assert v.experiment == exp
        assert validate({}, limits, base=exp).experiment == exp
    refused = validate(tj.preset("lenet5"))
    assert not refused.ok and "167.5 GB" in refused.message and "cluster" in refused.message
    v = validate({"widths": "32, 16", "lr": "0.05", "epochs": "10", "batch_size": "32.0", "seed": "3",
                  "activation": " ReLU ", "shuffle": "yes", "dtype": "float64"})
    assert v.ok, v.errors
    exp = v.experiment
    assert exp.model.widths == (32, 16) and exp.model.activation == "relu"
    assert exp.train.lr == 0.05 and exp.train.epochs == 10 and exp.train.batch_size == 32 and exp.train.shuffle
    assert exp.seed == 3 and exp.dtype == "float64"
    assert exp.model.init == tj.preset("lecture").model.init  # missing keys from the base
    assert validate({"widths": ""}).experiment.model.widths == ()  # no hidden layer: softmax regression
    assert validate({"w": "[8, 4]", "train.lr": 1, "ep": 3}).experiment.model.widths == (8, 4)


def test_limits_are_honoured():
    small = Limits(max_width=16, max_depth=1, max_epochs=5, max_params=500)
    assert "from 1 to 16" in validate({"widths": "32"}, small).message
    assert "At most 1 hidden layer is allowed; got 2." in validate({"widths": "8,8"}, small).message
    assert "from 1 to 5" in validate({"epochs": 6, "widths": "4"}, small).message
    assert validate({"widths": "6", "epochs": 5}, small).ok  # P = 460
    assert validate({"widths": "16", "epochs": 5}, small).errors == (
        "P = 1,210 parameters is more than this server's limit of 500 — make the network narrower.",)
    tight = Limits(max_jacobian_bytes=50_000_000)
    assert "this server allows 50 MB — make the network narrower." in validate({"widths": "32"}, tight).message
    run = validate({"widths": "2", "epochs": 200, "batch_size": 16}, Limits(max_jacobian_bytes=30_000_000))
    assert "mostly to record its 20,000 training steps" in run.message


def test_validate_computes_nothing_heavy(monkeypatch):
    jacobian, train = importlib.import_module("tj.jacobian"), importlib.import_module("tj.train")

    def boom(*a, **k):
        raise AssertionError("validate must not train or time anything")

    for mod, name in ((jacobian, "record"), (jacobian, "training_jacobian"), (jacobian, "estimate_seconds"),
                      (jacobian, "train"), (train, "train")):
        monkeypatch.setattr(mod, name, boom)
    assert validate(tj.preset("paper")).ok
    monkeypatch.setattr(jacobian, "memory_estimate", boom)  # a broken estimate falls back to J + SVD
    assert validate(tj.preset("paper")).ok
    assert "P = 300,010 needs" in validate({"widths": 4000}).message


# --------------------------------------------------------------------------------------------- URLs

def test_query_params_are_short_and_compact_names_the_preset():
    for name, exp in tj.PRESETS.items():
        assert query_params(exp, compact=True) == {"preset": name}
        big = Limits(max_params=10**6, max_jacobian_bytes=10**12) if name == "lenet5" else None
        assert from_query_params({"preset": name}, limits=big).experiment == exp
        assert from_query_params(query_params(exp), limits=big).experiment == exp
    e = tj.preset("paper").replace(**{"train.lr": 0.05, "seed": 7})
    assert query_params(e, compact=True) == {"preset": "paper", "lr": "0.05", "seed": "7"}
    assert query_params(tj.preset("lecture").replace(**{"model.widths": ()}))["w"] == "none"
    assert not from_query_params({"preset": "huge"}).ok
    assert "Preset must be one of" in from_query_params({"preset": "huge"}).message
    assert from_query_params({"lr": ["0.1", "1e9"]}).errors[0].startswith("Learning rate must be at most 10")
    assert from_query_params({"lr": []}).ok
    assert not from_query_params("lr=0.1").ok


# --------------------------------------------------------------------------------------------- Limits

def test_limits_defaults_fit_the_paper_preset():
    d = Limits.from_env({})
    assert d == Limits() and d.warnings == () and d.cache_dir is None
    assert (d.max_params, d.max_jacobian_bytes, d.max_seconds, d.max_epochs, d.max_steps) == (
        6_000, 2_000_000_000, 600.0, 200, 20_000)
    assert (d.max_depth, d.max_width, d.max_seeds) == (4, 512, 8)
    p = 6_000  # J in float32 and its float64 SVD at the largest P allowed
    assert sum(tj.memory_estimate(tj.preset("paper").replace(**{"model.widths": (79,)})).values()) < 2e9
    assert 4 * p * p + 40 * p * p < d.max_jacobian_bytes
    assert "P = 6,000" in d.summary()


def test_limits_from_good_env_and_secrets(monkeypatch):
    env = {"TJ_MAX_PARAMS": "5000", "TJ_MAX_MEMORY_MB": "1500.5", "TJ_MAX_SECONDS": "90", "TJ_MAX_EPOCHS": " 50 ",
           "TJ_MAX_STEPS": "1e4", "TJ_CACHE_DIR": "~/tj-cache", "TJ_MAX_WIDTH": "128"}
    lim = Limits.from_env(env)
    assert lim.warnings == ()
    assert (lim.max_params, lim.max_jacobian_bytes, lim.max_seconds, lim.max_epochs, lim.max_steps) == (
        5000, 1_500_500_000, 90.0, 50, 10_000)
    assert isinstance(lim.max_seconds, float) and isinstance(lim.max_steps, int)
    assert lim.max_width == 128 and lim.cache_dir.endswith("tj-cache") and "~" not in lim.cache_dir
    secrets = {"max_params": 3000, "max_memory_mb": 800, "tj": {"max_epochs": "20", "max_params": 1}}
    lim = Limits.from_env({}, secrets)
    assert (lim.max_params, lim.max_jacobian_bytes, lim.max_epochs) == (3000, 800_000_000, 20)
    assert Limits.from_env({"TJ_MAX_PARAMS": "4000"}, secrets).max_params == 4000  # the environment wins
    monkeypatch.setenv("TJ_MAX_STEPS", "777")
    assert Limits.from_env().max_steps == 777


@pytest.mark.parametrize("value", ["abc", "-5", "0", "nan", "inf", "-inf", "1e400", "2.5", "0x10", "1" * 5000, "true"])
def test_limits_bad_env_values_fall_back_with_a_warning(value):
    lim = Limits.from_env({"TJ_MAX_PARAMS": value, "TJ_MAX_STEPS": value})
    assert (lim.max_params, lim.max_steps) == (6_000, 20_000)
    assert len(lim.warnings) == 2
    assert lim.warnings[0].startswith("TJ_MAX_PARAMS = ") and "using the default 6,000." in lim.warnings[0]
    for w in lim.warnings:
        assert w.endswith(".") and not [n for n in EXCEPTION_NAMES if n in w]
    mem = Limits.from_env({"TJ_MAX_MEMORY_MB": value if value != "2.5" else "-2.5"})
    assert mem.max_jacobian_bytes == 2_000_000_000 and "using the default 2,000 MB." in mem.warnings[0]


def test_limits_empty_values_and_broken_secrets():
    assert Limits.from_env({"TJ_MAX_PARAMS": "", "TJ_CACHE_DIR": "  "}) == Limits()

    class NoSecretsFile(dict):  # st.secrets without a secrets.toml raises on any access
        def __contains__(self, key):
            raise FileNotFoundError("no secrets.toml")

        def __getitem__(self, key):
            raise FileNotFoundError("no secrets.toml")

    assert Limits.from_env({}, NoSecretsFile()) == Limits()
    lim = Limits.from_env({}, {"max_params": True, "cache_dir": 5, "max_seconds": [1]})
    assert lim.max_params == 6_000 and lim.cache_dir is None and len(lim.warnings) == 3
    assert lim.warnings[0].startswith("Secret max_params")


ENV_NAMES = ["TJ_MAX_PARAMS", "TJ_MAX_MEMORY_MB", "TJ_MAX_SECONDS", "TJ_MAX_EPOCHS", "TJ_MAX_STEPS", "TJ_CACHE_DIR",
             "TJ_MAX_DEPTH", "TJ_MAX_WIDTH", "TJ_MAX_SEEDS"]


def test_a_huge_integer_secret_falls_back_with_a_warning():
    lim = Limits.from_env({}, {"max_seconds": 10**400, "max_memory_mb": 10**400})
    assert lim.max_seconds == Limits().max_seconds and lim.max_jacobian_bytes == Limits().max_jacobian_bytes
    assert len(lim.warnings) == 2


def test_a_memory_limit_under_one_byte_falls_back_with_a_warning():
    # found by the property test below: 6.6e-168 MB rounded to a limit of 0 bytes, which refuses everything
    for tiny in (6.647288272605152e-168, "1e-7"):
        lim = Limits.from_env({}, {"max_memory_mb": tiny})
        assert lim.max_jacobian_bytes == Limits().max_jacobian_bytes and len(lim.warnings) == 1
    assert Limits.from_env({"TJ_MAX_MEMORY_MB": "1e-6"}).max_jacobian_bytes == 1


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(ENV_NAMES),
                       st.one_of(TEXT, SPECIAL, st.integers(-5, 10**6).map(str))),
       st.dictionaries(st.sampled_from(["max_params", "max_memory_mb", "max_seconds", "cache_dir", "tj"]), JUNK))
def test_limits_from_any_env_are_positive(env, secrets):
    lim = Limits.from_env(env, secrets)
    for name in ("max_params", "max_jacobian_bytes", "max_epochs", "max_steps", "max_depth", "max_width", "max_seeds"):
        assert isinstance(getattr(lim, name), int) and getattr(lim, name) > 0
    assert math.isfinite(lim.max_seconds) and lim.max_seconds > 0
    assert all(isinstance(w, str) and w.endswith(".") for w in lim.warnings)
    assert_readable(validate(tj.preset("lecture"), lim))


def test_one_slow_probe_does_not_refuse_a_preset_for_every_session(tmp_path):
    """A cached estimate taken in a busy moment (the lecture J at 728 s, once, in CI) is probed again before refusing."""
    from tj.results import Results
    results, lecture = Results(folder=tmp_path, limits=Limits()), tj.preset("lecture")
    results.put("estimate", lecture, value={"train": 70.0, "jacobian": 728.0, "svd": 1.0})
    assert results.check(lecture).ok
    assert results.get("estimate", lecture)["jacobian"] < 60  # the fresh probe replaced it, for everyone
    too_slow = Results(folder=tmp_path, limits=Limits(max_seconds=1e-3))
    assert not too_slow.check(lecture).ok  # a fresh probe that agrees still refuses


def test_the_time_probe_runs_once_per_process_and_shape_unless_fresh(monkeypatch):
    """Home's table asks for every preset's estimate on every visit: the probe runs once, arithmetic does the rest."""
    from tj import jacobian
    lecture, runs = tj.preset("lecture").replace(seed=12345), []  # a probe no other test has taken
    real = jacobian.record
    monkeypatch.setattr(jacobian, "record", lambda *a, **k: (runs.append(1), real(*a, **k))[1])
    first = jacobian.estimate_seconds(lecture)
    assert runs and jacobian.estimate_seconds(lecture) == first
    n = len(runs)
    longer = jacobian.estimate_seconds(lecture.replace(**{"train.epochs": 16}))  # the same probe, twice the steps
    assert len(runs) == n and 1.5 < longer["train"] / first["train"] < 2.5
    jacobian.estimate_seconds(lecture, fresh=True)
    assert len(runs) == 2 * n


def test_the_time_probe_counts_its_work_not_its_waits():
    """Python threads busy beside the probe (other sessions) make it wait for the GIL; its estimate stays put."""
    import sys
    import threading
    from tj.jacobian import estimate_seconds
    lecture, busy, interval = tj.preset("lecture"), threading.Event(), sys.getswitchinterval()

    def spin():
        while not busy.is_set():
            pass
    idle = estimate_seconds(lecture, fresh=True)["jacobian"]
    spinners = [threading.Thread(target=spin) for _ in range(3)]
    sys.setswitchinterval(1e-4)
    try:
        for t in spinners:
            t.start()
        loaded = estimate_seconds(lecture, fresh=True)["jacobian"]
    finally:
        busy.set()
        for t in spinners:
            t.join()
        sys.setswitchinterval(interval)
    assert loaded < 25 * idle, (idle, loaded)  # measured 6–16× (wall time: 36–80×)
