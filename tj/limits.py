"""What this server allows: the size of a network, its training run and J, read from env vars or secrets.

The defaults fit a 2.7 GB host shared by a class: J in float32 plus its float64 SVD for P = 6,000 is
44·P² ≈ 1.6 GB, under the 2.0 GB memory limit that `tj.validate` checks against `memory_estimate`.

Environment variables (they win over secrets), and the Streamlit-secrets keys (lower case, no `TJ_`,
at the top level or inside a `[tj]` table):

    TJ_MAX_PARAMS     max_params      6000          parameters P of the network
    TJ_MAX_MEMORY_MB  max_memory_mb   2000          J + recorded run + tangents + SVD, in MB (10^6 bytes)
    TJ_MAX_SECONDS    max_seconds     600           estimated seconds for J (checked when an estimate is given)
    TJ_MAX_EPOCHS     max_epochs      200
    TJ_MAX_STEPS      max_steps       20000         epochs × batches per epoch
    TJ_MAX_DEPTH      max_depth       4             hidden layers
    TJ_MAX_WIDTH      max_width       512           units per hidden layer
    TJ_MAX_SEEDS      max_seeds       8             seeds in a multi-seed comparison
    TJ_CACHE_DIR      cache_dir       (none)        a directory for a disk cache

A value that is not a positive number falls back to the default and leaves a sentence in `warnings`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

MB = 1_000_000


@dataclass(frozen=True)
class Limits:
    """The server's limits on an experiment; `warnings` lists configuration values that were ignored."""

    max_params: int = 6_000
    max_jacobian_bytes: int = 2_000 * MB   # the sum of tj.jacobian.memory_estimate's parts
    max_seconds: float = 600.0
    max_epochs: int = 200
    max_steps: int = 20_000
    max_depth: int = 4
    max_width: int = 512
    max_seeds: int = 8
    cache_dir: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def max_memory_mb(self) -> float:
        return self.max_jacobian_bytes / MB

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> "Limits":
        """Limits from environment variables, then a secrets mapping (e.g. `st.secrets`), then the defaults.

        Never raises: unreadable secrets are skipped, bad values are replaced by the default with a warning.
        """
        environ = os.environ if environ is None else environ
        defaults, changes, warnings = cls(), {}, []
        for field_name, key, kind in _SETTINGS:
            source, value = _lookup(environ, secrets, key)
            if source is None:
                continue
            if kind == "path":
                if isinstance(value, (str, os.PathLike)) and str(value).strip():
                    changes[field_name] = os.path.expanduser(str(value).strip())
                elif not (isinstance(value, str) and not value.strip()):
                    warnings.append(f"{source} is not a directory path; no disk cache is used.")
                continue
            if isinstance(value, str) and not value.strip():
                continue  # set but empty: treated as unset
            number = _positive(value, whole=kind == "int")
            if kind == "mb" and number is not None:  # to whole bytes: at least one, and finite
                number = number * MB if math.isfinite(number * MB) else 0
                number = int(round(number)) if number >= 0.5 else None
            default = getattr(defaults, field_name)
            if number is None:
                shown = f"{default / MB:,g} MB" if kind == "mb" else f"{default:,g}"
                what = {"int": "a positive whole number", "mb": "a number of MB of at least one byte"}.get(
                    kind, "a positive number")
                warnings.append(f"{source} = {_show(value)} is not {what}; using the default {shown}.")
                continue
            changes[field_name] = float(number) if kind == "float" else number
        return replace(defaults, **changes, warnings=tuple(warnings))

    def summary(self) -> str:
        """One line for the app: what this server allows."""
        return (f"At most P = {self.max_params:,} parameters, {self.max_jacobian_bytes / 1e9:.1f} GB for J and "
                f"its SVD, {self.max_steps:,} training steps ({self.max_epochs:,} epochs), {self.max_depth} "
                f"hidden layers of up to {self.max_width:,} units, and about {self.max_seconds:,.0f} s for J.")


# (field, env var / secrets key without TJ_, kind)
_SETTINGS = (
    ("max_params", "MAX_PARAMS", "int"),
    ("max_jacobian_bytes", "MAX_MEMORY_MB", "mb"),
    ("max_seconds", "MAX_SECONDS", "float"),
    ("max_epochs", "MAX_EPOCHS", "int"),
    ("max_steps", "MAX_STEPS", "int"),
    ("max_depth", "MAX_DEPTH", "int"),
    ("max_width", "MAX_WIDTH", "int"),
    ("max_seeds", "MAX_SEEDS", "int"),
    ("cache_dir", "CACHE_DIR", "path"),
)
assert {f for f, _, _ in _SETTINGS} <= {f.name for f in fields(Limits)}


def _lookup(environ, secrets, key: str):
    """(where it came from, the raw value) or (None, None): env var TJ_KEY, then secrets key / secrets['tj'][key]."""
    env_name = "TJ_" + key
    try:
        if env_name in environ:
            return env_name, environ[env_name]
    except Exception:  # a broken mapping is as good as none
        pass
    if secrets is None:
        return None, None
    name = key.lower()
    for path, table in ((name, secrets), (f"tj.{name}", _table(secrets, "tj"))):
        try:
            if table is not None and name in table:
                return f"Secret {path}", table[name]
        except Exception:  # st.secrets raises when there is no secrets.toml
            pass
    return None, None


def _table(secrets, name):
    try:
        sub = secrets[name] if name in secrets else None
        return sub if isinstance(sub, Mapping) else None
    except Exception:
        return None


def _positive(value, whole: bool):
    """A finite number > 0 (an int when whole) from a number or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, str):
            text = value.strip()
            try:
                number = int(text)
            except ValueError:
                number = float(text)
        elif isinstance(value, int):
            number = value
        else:
            number = float(value)
        if not whole:
            number = float(number)  # a huge integer overflows here, not later
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return None
    if isinstance(number, float):
        if not math.isfinite(number):
            return None
        if whole:
            if not number.is_integer():
                return None
            number = int(number)
    if number <= 0:
        return None
    return number


def _show(value) -> str:
    try:
        text = repr(value) if isinstance(value, (str, int, float)) else f"a {type(value).__name__}"
    except Exception:
        text = "an unreadable value"
    return text if len(text) <= 40 else text[:39] + "…"
