"""Altair chart builders: plain functions from arrays to charts, no Streamlit."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

REGION_COLORS = alt.Scale(domain=["chaotic", "bulk", "stable"], range=["#d62728", "#2ca02c", "#1f77b4"])
MAX_ROWS = 4800  # below Altair's 5,000-row limit for inline data


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


def _region_bands(df: pd.DataFrame) -> alt.Chart:
    bands = df.groupby("region")["index"].agg(["min", "max"]).reset_index()
    return alt.Chart(bands).mark_rect(opacity=0.12).encode(
        x="min:Q", x2="max:Q", color=alt.Color("region:N", scale=REGION_COLORS, title="region"),
        tooltip=[alt.Tooltip("region:N"), alt.Tooltip("min:Q", title="first index"),
                 alt.Tooltip("max:Q", title="last index")])


def _by_index(df: pd.DataFrame, field: str, title: str, log: bool, pick: bool = False,
              tooltip_extra=()) -> alt.Chart:
    data = _thin(df)
    scale = alt.Scale(type="log") if log else alt.Scale()
    base = alt.Chart(data).mark_circle(size=12).encode(
        x=alt.X("index:Q", title="singular index i (σ descending)"),
        y=alt.Y(f"{field}:Q", title=title, scale=scale),
        color=alt.Color("region:N", scale=REGION_COLORS, title="region"),
        tooltip=[alt.Tooltip("index:Q"), alt.Tooltip("sigma:Q", title="σ", format=".6g"),
                 alt.Tooltip("region:N"), *tooltip_extra],
    )
    if pick:
        sel = alt.selection_point(name="pick", fields=["index"], on="click", nearest=True)
        base = base.add_params(sel).encode(size=alt.condition(sel, alt.value(60), alt.value(12)))
    return base


def sigma_chart(df: pd.DataFrame, log_y: bool = True, pick: bool = True) -> alt.LayerChart:
    """σ_i by index with the line σ = 1 and the regions shaded; clicking a point selects index i."""
    one = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(strokeDash=[4, 4], color="black").encode(y="y:Q")
    points = _by_index(df, "sigma", "singular value σ", log_y, pick)
    return alt.layer(_region_bands(df), points, one).properties(title="Singular values of J", height=300)


def distance_chart(df: pd.DataFrame) -> alt.LayerChart:
    """|σ_i − 1| on a log axis: the bulk is the deep valley."""
    d = df.assign(distance_from_one=np.maximum(df["distance_from_one"], 1e-16))
    pts = _by_index(d, "distance_from_one", "|σ − 1|", True,
                    tooltip_extra=[alt.Tooltip("distance_from_one:Q", title="|σ−1|", format=".3g")])
    return alt.layer(_region_bands(d), pts).properties(title="Distance from one", height=250)


def alignment_chart(df: pd.DataFrame) -> alt.LayerChart:
    """u_i·v_i by index: 1 means the direction comes out of training where it went in."""
    pts = _by_index(df, "alignment", "alignment u_i·v_i", False,
                    tooltip_extra=[alt.Tooltip("alignment:Q", format=".4f")])
    return alt.layer(_region_bands(df), pts).properties(title="Alignment of left and right singular vectors", height=250)


def movement_chart(df: pd.DataFrame) -> alt.LayerChart:
    """|v_i·(θ_T − θ_0)|: how far training moved along each direction."""
    d = df.assign(movement=np.maximum(df["movement"], 1e-16))
    pts = _by_index(d, "movement", "|v_i·(θ_T − θ_0)|", True,
                    tooltip_extra=[alt.Tooltip("movement:Q", format=".3g")])
    return alt.layer(_region_bands(d), pts).properties(title="How far training moved along v_i", height=250)


def log_sigma_histogram(df: pd.DataFrame, bins: int = 60) -> alt.Chart:
    """Histogram of log10 σ, stacked by region (binned here, so any P fits)."""
    edges = np.linspace(df["log10_sigma"].min(), df["log10_sigma"].max() + 1e-9, bins + 1)
    rows = []
    for region, part in df.groupby("region"):
        counts, _ = np.histogram(part["log10_sigma"], edges)
        rows += [{"region": region, "lo": lo, "hi": hi, "count": int(c)}
                 for lo, hi, c in zip(edges[:-1], edges[1:], counts) if c]
    return alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("lo:Q", title="log₁₀ σ"), x2="hi:Q", y=alt.Y("count:Q", stack=True, title="count"),
        color=alt.Color("region:N", scale=REGION_COLORS),
        tooltip=["region:N", alt.Tooltip("lo:Q", format=".2f", title="from"),
                 alt.Tooltip("hi:Q", format=".2f", title="to"), "count:Q"],
    ).properties(title="Histogram of log₁₀ σ", height=250)


def curves_chart(metrics) -> alt.HConcatChart:
    """Train/test loss and accuracy per epoch."""
    epochs = np.arange(len(metrics.train_loss))
    df = pd.concat([
        pd.DataFrame({"epoch": epochs, "value": metrics.train_loss, "set": "train", "metric": "loss"}),
        pd.DataFrame({"epoch": epochs, "value": metrics.test_loss, "set": "test", "metric": "loss"}),
        pd.DataFrame({"epoch": epochs, "value": metrics.train_acc, "set": "train", "metric": "accuracy"}),
        pd.DataFrame({"epoch": epochs, "value": metrics.test_acc, "set": "test", "metric": "accuracy"}),
    ])

    def one(metric, title):
        return alt.Chart(df[df.metric == metric]).mark_line(point=True).encode(
            x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=title),
            color=alt.Color("set:N", title="data"),
            tooltip=["set:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f", title=title)],
        ).properties(title=title, width=300, height=220)

    return alt.hconcat(one("loss", "cross-entropy (nats)"), one("accuracy", "accuracy"))


def digits_chart(images, titles, columns: int = 10, size: int = 56) -> alt.FacetChart:
    """8×8 images (n, 64) in [0, 1] as small heatmaps with a title each."""
    images = np.asarray(images, dtype=np.float64).reshape(len(images), 8, 8)
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    df = pd.concat([pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": img.ravel(),
                                  "title": title, "n": i})
                    for i, (img, title) in enumerate(zip(images, titles))])
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="greys", domain=[0, 1]), legend=None),
        tooltip=["title:N", "row:O", "col:O", alt.Tooltip("value:Q", format=".2f", title="pixel")],
    ).properties(width=size, height=size).facet(
        facet=alt.Facet("title:N", title=None, sort=alt.SortField("n")), columns=columns)


def signed_images_chart(images, titles, columns: int = 16, size: int = 40, title: str = "") -> alt.FacetChart:
    """8×8 signed images (n, 64), e.g. a direction's first-layer weights per hidden unit, on a diverging scale."""
    images = np.asarray(images, dtype=np.float64).reshape(len(images), 8, 8)
    lim = float(np.abs(images).max()) or 1.0
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    df = pd.concat([pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": img.ravel(),
                                  "pixel": (rows * 8 + cols).ravel(), "title": t, "n": i})
                    for i, (img, t) in enumerate(zip(images, titles))])
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=[-lim, lim], reverse=True),
                        title="weight"),
        tooltip=["title:N", "pixel:Q", alt.Tooltip("value:Q", format=".3g")],
    ).properties(width=size, height=size).facet(
        facet=alt.Facet("title:N", title=title or None, sort=alt.SortField("n")), columns=columns)


def block_heatmap(names, matrix, title: str = "‖(J − I) block‖_F") -> alt.LayerChart:
    """A small (blocks × blocks) heatmap of per-block norms, with the values written in."""
    names = list(names)
    df = pd.DataFrame([{"output block": r, "input block": c, "norm": float(matrix[i][j]), "i": i, "j": j}
                       for i, r in enumerate(names) for j, c in enumerate(names)])
    base = alt.Chart(df).encode(x=alt.X("input block:N", sort=names, title="perturbed at init (column block)"),
                                y=alt.Y("output block:N", sort=names, title="effect after training (row block)"))
    rect = base.mark_rect().encode(color=alt.Color("norm:Q", scale=alt.Scale(scheme="viridis"), title="norm"),
                                   tooltip=["output block:N", "input block:N", alt.Tooltip("norm:Q", format=".4g")])
    text = base.mark_text(color="white").encode(text=alt.Text("norm:Q", format=".3g"))
    return alt.layer(rect, text).properties(title=title, width=320, height=320)


def block_share_chart(names, shares, title: str = "share of ‖v‖² per parameter block") -> alt.Chart:
    """Bar chart of how a unit vector's squared norm splits over parameter blocks."""
    df = pd.DataFrame({"block": list(names), "share": np.asarray(shares, dtype=np.float64)})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("block:N", sort=list(names)), y=alt.Y("share:Q", title="share of ‖v‖²", scale=alt.Scale(domain=[0, 1])),
        tooltip=["block:N", alt.Tooltip("share:Q", format=".4f")],
    ).properties(title=title, width=300, height=200)
