"""Altair chart builders: plain functions from arrays to charts, no Streamlit.

Colours are defined once, in COLORS: one per region (chaotic, bulk, stable), per input set (train, test,
inverted, noise) and per run (main, shuffled labels, noise inputs, seeds). Every chart takes its categorical
colours from `color_scale`, so a region or an input set has the same colour on every page. Legends sit below
their chart in columns (never wider than the chart), and titles get room above them.
"""
from __future__ import annotations

import json
import re

import altair as alt
import numpy as np
import pandas as pd

from .spectrum import REGIONS
COLORS = {
    "chaotic": "#d62728", "bulk": "#2ca02c", "stable": "#1f77b4",                              # regions
    "train": "#111111", "test": "#ff7f0e", "inverted": "#9467bd", "noise": "#8c564b",         # input sets
    "main": "#111111", "shuffled labels": "#e377c2", "noise inputs": "#8c564b",               # runs
    "random subspaces": "#7f7f7f",
    "|δ·u_k| (measured)": "#2ca02c", "‖δ − (δ·u_k)u_k‖ (measured)": "#7f7f7f",          # linearity curves
    "ε σ_k (predicted by J)": "#111111",
}
ALIASES = {  # other names of the same thing: same colour
    "top-k (chaotic)": "chaotic", "bottom-k (stable)": "stable", "complement of bulk": "main",
    "test digits": "test", "Gaussian-noise images": "noise", "float64 J": "main",
}
OTHERS = ("#17becf", "#bcbd22", "#7f7f7f", "#9edae5", "#dbdb8d", "#c49c94", "#f7b6d2", "#aec7e8", "#ffbb78",
          "#98df8a")
MAX_ROWS = 4800  # below Altair's 5,000-row limit for inline data
TITLE = dict(anchor="start", fontSize=14, offset=10)


def color_of(name: str) -> str | None:
    """The one colour of a region, input set or run (None for anything else)."""
    name = ALIASES.get(name, name)
    if name in COLORS:
        return COLORS[name]
    pair = re.fullmatch(r"main vs (.+)", name) or re.fullmatch(r"null space \((.+)\) vs bulk", name)
    if pair:
        return color_of(pair.group(1))
    seed = re.fullmatch(r"seed (\d+)", name)
    return OTHERS[int(seed.group(1)) % len(OTHERS)] if seed else None


def color_scale(names) -> alt.Scale:
    """A categorical scale: the defined colour for known names, distinct others (in order) for the rest."""
    names = list(dict.fromkeys(names))
    fixed = [color_of(n) for n in names]
    spare = iter([c for c in OTHERS + ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
                  if c not in fixed])
    return alt.Scale(domain=names, range=[c or next(spare) for c in fixed])


def legend(names, width: int = 300, title=None, orient: str = "bottom") -> alt.Legend:
    """Below (or above) the chart, in as many columns as fit its width, labels never cut."""
    longest = max((len(str(n)) for n in names), default=1)
    columns = max(1, min(len(list(names)), width // (7 * longest + 40)))
    return alt.Legend(orient=orient, columns=columns, labelLimit=0, title=title, symbolStrokeWidth=3,
                      symbolOpacity=1)


def color(field: str, names, title=None, width: int = 300, orient: str = "bottom") -> alt.Color:
    names = list(dict.fromkeys(names))
    return alt.Color(f"{field}:N", scale=color_scale(names), legend=legend(names, width, title, orient), sort=names)


PADDING = {"top": 14, "left": 5, "right": 5, "bottom": 5}


def titled(chart, text: str, pad: bool = True, **props):
    """A title with room above it (Streamlit places the next element right on top of the chart's bounds)."""
    if pad:  # fit the column's width, but take the height the title, plot and legend need (Streamlit would
        # otherwise squeeze them into the plot's height and push the title out of the top)
        props["padding"], props["autosize"] = PADDING, alt.AutoSizeParams(type="fit-x", contains="padding")
    return chart.properties(title=alt.TitleParams(text, **TITLE), **props)


REGION_COLORS = color_scale(REGIONS)


def _thin(df: pd.DataFrame, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Evenly spaced rows (first and last kept) when there are more than max_rows."""
    if len(df) <= max_rows:
        return df
    return df.iloc[np.unique(np.linspace(0, len(df) - 1, max_rows).round().astype(int))]


def spectrum_table(sigma, labels, alignment=None, movement=None) -> pd.DataFrame:
    """One row per singular index: σ, |σ−1|, log10 σ, region, alignment, movement."""
    sigma = np.asarray(sigma, dtype=np.float64)
    df = pd.DataFrame({"index": np.arange(len(sigma)), "sigma": sigma,
                       "distance_from_one": np.abs(sigma - 1), "region": np.asarray(labels, dtype=str)})
    df["log10_sigma"] = np.log10(np.maximum(sigma, 1e-300))
    if alignment is not None:
        df["alignment"] = np.asarray(alignment)
    if movement is not None:
        df["movement"] = np.asarray(movement)
    return df


def _index_axis(df: pd.DataFrame) -> alt.X:
    return alt.X("index:Q", title="singular index i (σ descending)",
                 scale=alt.Scale(domain=[0, max(1, int(df["index"].max()))], nice=False))


def _region_bands(df: pd.DataFrame, orient: str = "bottom") -> alt.Chart:
    bands = df.groupby("region")["index"].agg(["min", "max"]).reset_index()
    return alt.Chart(bands).mark_rect(opacity=0.12).encode(
        x=alt.X("min:Q", title="singular index i (σ descending)",
                scale=alt.Scale(domain=[0, max(1, int(df["index"].max()))], nice=False)), x2="max:Q",
        color=color("region", REGIONS, orient=orient),
        tooltip=[alt.Tooltip("region:N"), alt.Tooltip("min:Q", title="first index"),
                 alt.Tooltip("max:Q", title="last index")])


def _by_index(df: pd.DataFrame, field: str, title: str, log: bool, pick: bool = False,
              tooltip_extra=()) -> alt.Chart:
    data = _thin(df)
    scale = alt.Scale(type="log") if log else alt.Scale()
    base = alt.Chart(data).mark_circle(size=14, opacity=0.9).encode(
        x=_index_axis(df),
        y=alt.Y(f"{field}:Q", title=title, scale=scale),
        color=color("region", REGIONS),
        tooltip=[alt.Tooltip("index:Q"), alt.Tooltip("sigma:Q", title="σ", format=".6g"),
                 alt.Tooltip("region:N"), *tooltip_extra],
    )
    if pick:
        sel = alt.selection_point(name="pick", fields=["index"], on="click", nearest=True)
        base = base.add_params(sel).encode(size=alt.condition(sel, alt.value(70), alt.value(14)))
    return base


def sigma_chart(df: pd.DataFrame, log_y: bool = True, pick: bool = True) -> alt.LayerChart:
    """σ_i by index with the line σ = 1 and the regions shaded; clicking a point selects index i."""
    one = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(strokeDash=[4, 4], color="black").encode(y="y:Q")
    points = _by_index(df, "sigma", "singular value σ", log_y, pick)
    return titled(alt.layer(_region_bands(df), points, one), "Singular values of J (click a point)", height=300)


def distance_chart(df: pd.DataFrame) -> alt.LayerChart:
    """|σ_i − 1| on a log axis: the bulk is the deep valley."""
    d = df.assign(distance_from_one=np.maximum(df["distance_from_one"], 1e-16))
    pts = _by_index(d, "distance_from_one", "|σ − 1|", True,
                    tooltip_extra=[alt.Tooltip("distance_from_one:Q", title="|σ−1|", format=".3g")])
    return titled(alt.layer(_region_bands(d), pts), "Distance from one", height=250)


def alignment_chart(df: pd.DataFrame) -> alt.LayerChart:
    """u_i·v_i by index: 1 means the direction comes out of training where it went in."""
    pts = _by_index(df, "alignment", "alignment u_i·v_i", False,
                    tooltip_extra=[alt.Tooltip("alignment:Q", format=".4f")])
    return titled(alt.layer(_region_bands(df), pts), "Alignment of left and right singular vectors", height=250)


def movement_chart(df: pd.DataFrame) -> alt.LayerChart:
    """|v_i·(θ_T − θ_0)|: how far training moved along each direction."""
    d = df.assign(movement=np.maximum(df["movement"], 1e-16))
    pts = _by_index(d, "movement", "|v_i·(θ_T − θ_0)|", True,
                    tooltip_extra=[alt.Tooltip("movement:Q", format=".3g")])
    return titled(alt.layer(_region_bands(d), pts), "How far training moved along v_i", height=250)


def log_sigma_histogram(df: pd.DataFrame, bins: int = 60) -> alt.Chart:
    """Histogram of log10 σ, stacked by region (binned and stacked here, so any P fits)."""
    edges = np.linspace(df["log10_sigma"].min(), df["log10_sigma"].max() + 1e-9, bins + 1)
    rows, below = [], np.zeros(bins)
    for region in REGIONS:
        counts, _ = np.histogram(df.loc[df["region"] == region, "log10_sigma"], edges)
        rows += [{"region": region, "lo": edges[i], "hi": edges[i + 1], "count": int(counts[i]),
                  "y0": below[i], "y1": below[i] + counts[i]} for i in np.flatnonzero(counts)]
        below += counts
    return titled(alt.Chart(pd.DataFrame(rows)).mark_rect().encode(
        x=alt.X("lo:Q", title="log₁₀ σ", scale=alt.Scale(domain=[float(edges[0]), float(edges[-1])], nice=False)),
        x2="hi:Q", y=alt.Y("y0:Q", title="count"), y2="y1:Q",
        color=color("region", REGIONS),
        tooltip=["region:N", alt.Tooltip("lo:Q", format=".2f", title="from"),
                 alt.Tooltip("hi:Q", format=".2f", title="to"), "count:Q"],
    ), "Histogram of log₁₀ σ", height=250)


def curves_charts(metrics) -> tuple[alt.Chart, alt.Chart]:
    """Train/test loss and accuracy per epoch: two charts, side by side on a wide screen, stacked on a phone."""
    epochs = np.arange(len(metrics.train_loss))
    df = pd.concat([
        pd.DataFrame({"epoch": epochs, "value": metrics.train_loss, "set": "train", "metric": "loss"}),
        pd.DataFrame({"epoch": epochs, "value": metrics.test_loss, "set": "test", "metric": "loss"}),
        pd.DataFrame({"epoch": epochs, "value": metrics.train_acc, "set": "train", "metric": "accuracy"}),
        pd.DataFrame({"epoch": epochs, "value": metrics.test_acc, "set": "test", "metric": "accuracy"}),
    ])

    def one(metric, title):
        return titled(alt.Chart(df[df.metric == metric]).mark_line(point=True).encode(
            x=alt.X("epoch:O", title="epoch", axis=alt.Axis(labelAngle=0)), y=alt.Y("value:Q", title=title),
            color=color("set", ("train", "test"), width=300),
            tooltip=["set:N", "epoch:O", alt.Tooltip("value:Q", format=".4f", title=title)],
        ), title, height=220)

    return one("loss", "cross-entropy (nats)"), one("accuracy", "accuracy")


def _square(images) -> tuple[np.ndarray, int]:
    """(n, side, side) float64 from (n, side²) or (n, side, side)."""
    images = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    side = int(round(images.shape[1] ** 0.5))
    if side * side != images.shape[1]:
        raise ValueError(f"images of {images.shape[1]} pixels are not square")
    return images.reshape(len(images), side, side), side


PHONE_WIDTH = 340  # px for a chart in a 390 px phone's column


def _image_grid(images, titles, columns: int, size: int, color_enc, title: str = "",
                width: int | None = None) -> alt.FacetChart:
    """Square images (n, side²) as small heatmaps, one panel per image keyed by its position (titles may repeat);
    with `width`, fewer columns where the panels and their titles would not fit in that many px."""
    images, side = _square(images)
    titles = [str(t) for t in titles]
    if width is not None:  # a panel is as wide as its title (about 5.5 px a character at 11 px) and 20 px apart
        pitch = max(size, 5.5 * max(map(len, titles), default=1)) + 20
        columns = max(1, min(columns, int((width + 20) // pitch)))
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    df = pd.concat([pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": img.ravel(),
                                  "pixel": (rows * side + cols).ravel(), "title": t, "n": i})
                    for i, (img, t) in enumerate(zip(images, titles))])
    header = alt.Header(labelExpr=f"{json.dumps(titles)}[datum.value]", labelLimit=0, labelFontSize=11,
                        title=title or None, titleFontSize=14, titleAnchor="start", titlePadding=8)
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None), color=color_enc,
        tooltip=["title:N", "pixel:Q", alt.Tooltip("value:Q", format=".3g", title="value")],
    ).properties(width=size, height=size).facet(
        facet=alt.Facet("n:O", header=header, title=title or None), columns=columns
    ).properties(padding=PADDING)


def digits_chart(images, titles, columns: int = 10, size: int = 56, width: int | None = None) -> alt.FacetChart:
    """Square images (n, side²) in [0, 1] (8×8 digits, 28×28 MNIST) as small heatmaps with a title each (white 0,
    black 1), in at most `width` px when given."""
    enc = alt.Color("value:Q", scale=alt.Scale(scheme="greys", domain=[0, 1]), legend=None)
    return _image_grid(images, titles, columns, size, enc, width=width)


def _signed(limit: float, title: str) -> alt.Color:
    return alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=[-limit, limit], reverse=True),
                     legend=alt.Legend(orient="bottom", title=title, gradientLength=240, format=".2g"))


def signed_images_chart(images, titles, columns: int = 8, size: int = 40, title: str = "",
                        limit: float | None = None, legend_title: str = "weight",
                        width: int | None = None) -> alt.FacetChart:
    """Square signed images (n, side²), e.g. a direction's first-layer weights per hidden unit (8×8) or a conv
    kernel per channel (k×k), on a diverging scale of ±limit (default: their own largest |value|)."""
    lim = limit or float(np.abs(np.asarray(images, dtype=np.float64)).max()) or 1.0
    return _image_grid(images, titles, columns, size, _signed(lim, legend_title), title, width)


def direction_chart(d, index: int, max_panels: int = 64, width: int | None = None):
    """The block of v_index that holds most of its norm, where it lives: first-layer images, conv kernels, a
    weight matrix as a heatmap or a bias as bars, on the colour scale of the whole vector (±max |v|)."""
    share = float(d.shares[d.names.index(d.block)])
    title = f"v_{index} in {d.block} ({100 * share:.0f} % of its norm²)"

    def heading(what: str):  # on a phone, what is drawn goes on a second line
        return [title, what] if width else f"{title}: {what}"
    legend_title = f"weight (±{d.scale:.2g} = max |v|)"
    values = np.asarray(d.values)
    if d.kind == "images":
        n = min(len(values), max_panels)
        return signed_images_chart(values[:n].reshape(n, -1), [f"unit {u}" for u in range(n)],
                                   title=heading("one image per unit"), limit=d.scale, legend_title=legend_title,
                                   width=width)
    if d.kind == "kernels":
        out, inp, k = values.shape[0], values.shape[1], values.shape[-1]
        pairs = [(o, c) for o in range(out) for c in range(inp)][:max_panels]
        return signed_images_chart(np.array([values[o, c].ravel() for o, c in pairs]),
                                   [f"out {o}, in {c}" if inp > 1 else f"channel {o}" for o, c in pairs],
                                   columns=8, size=max(96, 8 * k), limit=d.scale, legend_title=legend_title,
                                   title=heading(f"one {k}×{k} kernel per channel"), width=width)
    if d.kind == "vector":
        df = pd.DataFrame({"entry": np.arange(len(values)), "value": values})
        return titled(alt.Chart(df).mark_bar().encode(
            x=alt.X("entry:O", title="entry"), y=alt.Y("value:Q", title="weight",
                                                        scale=alt.Scale(domain=[-d.scale, d.scale])),
            tooltip=["entry:O", alt.Tooltip("value:Q", format=".3g")]), title, height=200)
    rows, cols = np.meshgrid(np.arange(values.shape[0]), np.arange(values.shape[1]), indexing="ij")
    df = pd.DataFrame({"row": rows.ravel(), "column": cols.ravel(), "value": values.ravel()})
    return titled(alt.Chart(df).mark_rect().encode(
        x=alt.X("column:O", title="input unit", axis=alt.Axis(labels=values.shape[1] <= 32)),
        y=alt.Y("row:O", title="output unit"), color=_signed(d.scale, legend_title),
        tooltip=["row:O", "column:O", alt.Tooltip("value:Q", format=".3g")]),
        heading("one cell per weight"), height=alt.Step(max(8, min(24, 320 // max(1, values.shape[0])))))


def matrix_heatmap(names, matrix, title: str, x_title: str, y_title: str, value: str = "value") -> alt.LayerChart:
    """A small labelled square heatmap with the values written in (dark text on light cells, light on dark)."""
    names = list(names)
    values = np.asarray(matrix, dtype=np.float64)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    light = lo + 0.55 * (hi - lo)  # viridis is light (yellow-green) above about 55 % of its range: dark ink there
    df = pd.DataFrame([{"row": r, "column": c, value: float(values[i][j]),
                        "ink": "black" if values[i][j] >= light else "white"}
                       for i, r in enumerate(names) for j, c in enumerate(names)])
    base = alt.Chart(df).encode(x=alt.X("column:N", sort=names, title=x_title, axis=alt.Axis(labelAngle=-30)),
                                y=alt.Y("row:N", sort=names, title=y_title))
    rect = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="viridis", domain=[lo, hi]),
                        legend=alt.Legend(orient="bottom", title=value, gradientLength=240)),
        tooltip=["row:N", "column:N", alt.Tooltip(f"{value}:Q", format=".4g")])
    text = base.mark_text(fontSize=12).encode(text=alt.Text(f"{value}:Q", format=".3g"), color=alt.Color(
        "ink:N", legend=None, scale=alt.Scale(domain=["black", "white"], range=["black", "white"])))
    # band steps, not a fixed height: Streamlit takes a chart's height as the whole figure's and would push the title
    # out of the top
    return titled(alt.layer(rect, text).resolve_scale(color="independent"), title, width=alt.Step(64),
                  height=alt.Step(40))


def block_heatmap(names, matrix, title: str = "‖(J − I) block‖_F") -> alt.LayerChart:
    """Per-block norms of J − I: rows where the effect lands, columns where the nudge was made."""
    return matrix_heatmap(names, matrix, title, "nudged at init", "effect after training", "norm")


def series_chart(series: dict, y_title: str, log_y: bool = True, title: str = "", x_title: str = "index",
                 floor: float = 1e-16, fractions: bool = False, x=None, log_x: bool = False,
                 on_top: str | None = None, dashed: tuple = (), beneath: alt.Chart | None = None,
                 ordered: bool = False) -> alt.Chart:
    """Several curves y(x) on one chart (x: index, index / length with `fractions`, or given), thinned under the
    row limit; `on_top` is drawn last, `dashed` series dashed, `beneath` (e.g. region bands) under them all;
    `ordered` series (epochs) on one dark-to-light scale instead of distinct colours."""
    per = max(50, MAX_ROWS // max(1, len(series)))
    parts = []
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        xs = np.asarray(x, dtype=np.float64) if x is not None else np.arange(len(values)) / (
            len(values) if fractions else 1)
        df = pd.DataFrame({"x": xs, "y": np.maximum(values, floor) if log_y else values, "series": name})
        parts.append(_thin(df, per))
    df = pd.concat(parts)
    lo, hi = float(df["x"].min()), float(df["x"].max())
    xscale = alt.Scale(type="log", domain=[lo, hi], nice=False) if log_x else alt.Scale(domain=[lo, hi], nice=False)
    names = list(series)
    enc = dict(
        x=alt.X("x:Q", title=x_title, scale=xscale, axis=alt.Axis(format="~e") if log_x else alt.Axis()),
        y=alt.Y("y:Q", title=y_title, scale=alt.Scale(type="log", nice=False) if log_y else alt.Scale()),
        color=alt.Color("series:O", sort=names, legend=legend(names), scale=alt.Scale(
            domain=names, scheme={"name": "viridis", "extent": [0, 0.8]})) if ordered else color("series", names),
        strokeDash=alt.StrokeDash("series:N", legend=None, sort=names, scale=alt.Scale(
            domain=names, range=[[6, 4] if n in dashed else [1, 0] for n in names])),
        tooltip=["series:N", alt.Tooltip("x:Q", title=x_title, format=".4g"),
                 alt.Tooltip("y:Q", format=".4g", title=y_title)])
    under = df[df["series"] != on_top]
    chart = alt.Chart(under).mark_line(strokeWidth=1.8).encode(**enc)
    if on_top in series:
        chart = alt.layer(chart, alt.Chart(df[df["series"] == on_top]).mark_line(strokeWidth=2.4).encode(**enc))
    if beneath is not None:
        chart = alt.layer(beneath, chart).resolve_scale(color="independent")
    return titled(chart, title, height=280)


def counts_chart(epochs, counts: dict, title: str = "Region counts by checkpoint") -> alt.Chart:
    """Region counts per checkpoint, one line per region, on a discrete epoch axis."""
    df = pd.concat([pd.DataFrame({"epoch": [f"{e:g}" for e in epochs], "count": np.asarray(v), "region": r})
                    for r, v in counts.items()])
    order = [f"{e:g}" for e in epochs]
    return titled(alt.Chart(df).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("epoch:O", sort=order, title="epoch (checkpoint)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("count:Q", title="directions"), color=color("region", list(counts)),
        tooltip=["region:N", "epoch:O", "count:Q"]), title, height=260)


def overlap_chart(ks, overlaps: dict, baseline, title: str = "Bulk overlap") -> alt.LayerChart:
    """Mean principal cosine against subspace rank k (log axis fitted to the k values), random baseline dashed."""
    ks = np.asarray(ks)
    df = pd.concat([pd.DataFrame({"k": ks, "overlap": np.asarray(v), "pair": name}) for name, v in overlaps.items()]
                   + [pd.DataFrame({"k": ks, "overlap": np.asarray(baseline), "pair": "random subspaces"})])
    names = [*overlaps, "random subspaces"]
    return titled(alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("k:Q", title="subspace rank k",
                scale=alt.Scale(type="log", domain=[int(ks.min()), int(ks.max())], nice=False)),
        y=alt.Y("overlap:Q", title="mean cosine of principal angles", scale=alt.Scale(domain=[0, 1])),
        color=color("pair", names),
        strokeDash=alt.StrokeDash("pair:N", legend=None, sort=names, scale=alt.Scale(
            domain=names, range=[[1, 0]] * len(overlaps) + [[5, 4]])),
        tooltip=["pair:N", "k:Q", alt.Tooltip("overlap:Q", format=".3f")]), title, height=280)


def kl_chart(kl: dict, labels) -> alt.Chart:
    """Max-over-inputs KL per singular index, one colour per input set, log scale, train drawn on top, over the
    regions shaded (their legend above, the input sets' below: side by side they would not fit a phone)."""
    bands = _region_bands(pd.DataFrame({"index": np.arange(len(labels)), "region": np.asarray(labels, dtype=str)}),
                          orient="top")
    return series_chart(kl, "max KL(p ‖ p perturbed) (nats)", True, "Output change when θ_T moves along v_i",
                        "singular index i (σ descending)", floor=1e-12, on_top="train", beneath=bands)


def flips_chart(flips) -> alt.Chart:
    """Share of predictions that change class against the step size (log), per input set: the chosen direction
    solid, the chaotic directions' mean dashed."""
    chosen, chaotic = f"v_{flips.index}", f"chaotic (mean of the first {flips.n_chaotic})"
    df = pd.concat([pd.DataFrame({"size": flips.sizes, "share": np.asarray(v), "inputs": name, "direction": which})
                    for which, shares in ((chosen, flips.along), (chaotic, flips.chaotic))
                    for name, v in shares.items()])
    names, directions = list(flips.along), [chosen, chaotic]
    return titled(alt.Chart(df).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("size:Q", scale=alt.Scale(type="log", nice=False), title="step size s (θ_T + s·v)",
                axis=alt.Axis(format="~g")),
        y=alt.Y("share:Q", title="predictions that change class", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=color("inputs", names),
        strokeDash=alt.StrokeDash("direction:N", sort=directions, legend=None,  # said in the title
                                  scale=alt.Scale(domain=directions, range=[[1, 0], [6, 4]])),
        tooltip=["direction:N", "inputs:N", alt.Tooltip("size:Q", format=".3g"),
                 alt.Tooltip("share:Q", format=".0%", title="changed")]),
        f"Class changes: {chosen} solid, chaotic dashed", height=260)


LINEARITY_CURVES = ("|δ·u_k| (measured)", "‖δ − (δ·u_k)u_k‖ (measured)", "ε σ_k (predicted by J)")


def linearity_charts(lin, holds_up_to: float | None = None) -> tuple[alt.Chart, alt.Chart]:
    """|δ·u_k|, ‖δ − (δ·u_k)u_k‖ and the prediction εσ_k against ε (log-log), and the test loss, each with a rule
    at the largest ε up to which the prediction holds: two charts, side by side on a wide screen, stacked on a
    phone."""
    df = pd.concat([pd.DataFrame({"eps": lin.eps, "value": np.maximum(v, 1e-16), "curve": name})
                    for name, v in zip(LINEARITY_CURVES, (lin.along, lin.across, lin.predicted))])
    epsx = alt.X("eps:Q", scale=alt.Scale(type="log", domain=[float(np.min(lin.eps)), float(np.max(lin.eps))],
                                          nice=False), title="ε")
    resp = alt.Chart(df).mark_line(point=True).encode(
        x=epsx, y=alt.Y("value:Q", scale=alt.Scale(type="log"), title="size of the change in θ_T"),
        color=color("curve", LINEARITY_CURVES, width=300),
        strokeDash=alt.StrokeDash("curve:N", legend=None, sort=list(LINEARITY_CURVES), scale=alt.Scale(
            domain=list(LINEARITY_CURVES), range=[[1, 0], [1, 0], [5, 4]])),
        tooltip=["curve:N", alt.Tooltip("eps:Q", format=".3g"), alt.Tooltip("value:Q", format=".4g")])
    loss = alt.Chart(pd.DataFrame({"eps": lin.eps, "test loss": lin.test_loss})).mark_line(
        point=True, color=COLORS["test"]).encode(
        x=epsx, y=alt.Y("test loss:Q", title="test loss (nats)"),
        tooltip=[alt.Tooltip("eps:Q", format=".3g"), alt.Tooltip("test loss:Q", format=".4f")])
    if holds_up_to is not None and holds_up_to < float(np.max(lin.eps)):
        rule = alt.Chart(pd.DataFrame({"eps": [holds_up_to], "what": [f"J's prediction holds up to ε = {holds_up_to:g}"]})
                         ).mark_rule(strokeDash=[3, 3], color="#7f7f7f").encode(x="eps:Q", tooltip=["what:N"])
        resp, loss = alt.layer(resp, rule), alt.layer(loss, rule)
    return (titled(resp, f"Retraining from θ_0 + ε v_{lin.index}", height=240),
            titled(loss, "Test loss after retraining", height=240))


def subspace_chart(ks, losses: dict) -> alt.Chart:
    """Final test loss of training restricted to k singular directions, per kind of subspace."""
    ks = np.asarray(ks)
    df = pd.concat([pd.DataFrame({"k": ks, "test loss": np.asarray(v), "subspace": name})
                    for name, v in losses.items()])
    return titled(alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("k:Q", title="dimensions k trained", scale=alt.Scale(domain=[int(ks.min()), int(ks.max())],
                                                                      nice=False)),
        y=alt.Y("test loss:Q", title="final test loss (nats)"),
        color=color("subspace", list(losses)),
        tooltip=["subspace:N", "k:Q", alt.Tooltip("test loss:Q", format=".4f")],
    ), "Training restricted to θ_0 + Bᵀc", height=280)


def block_share_chart(names, shares, region: str, title: str = "share of ‖v‖² per parameter block") -> alt.Chart:
    """Bar chart of how a unit vector's squared norm splits over parameter blocks, in its region's colour."""
    df = pd.DataFrame({"block": list(names), "share": np.asarray(shares, dtype=np.float64)})
    return titled(alt.Chart(df).mark_bar(color=color_of(region)).encode(
        x=alt.X("block:N", sort=list(names), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share:Q", title="share of ‖v‖²", scale=alt.Scale(domain=[0, 1])),
        tooltip=["block:N", alt.Tooltip("share:Q", format=".4f")],
    ), title, width=300, height=200)
