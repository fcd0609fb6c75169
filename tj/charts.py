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
    """Histogram of log10 σ, stacked by region (binned and stacked here, so any P fits)."""
    edges = np.linspace(df["log10_sigma"].min(), df["log10_sigma"].max() + 1e-9, bins + 1)
    rows, below = [], np.zeros(bins)
    for region in ("chaotic", "bulk", "stable"):
        counts, _ = np.histogram(df.loc[df["region"] == region, "log10_sigma"], edges)
        rows += [{"region": region, "lo": edges[i], "hi": edges[i + 1], "count": int(counts[i]),
                  "y0": below[i], "y1": below[i] + counts[i]} for i in np.flatnonzero(counts)]
        below += counts
    return alt.Chart(pd.DataFrame(rows)).mark_rect().encode(
        x=alt.X("lo:Q", title="log₁₀ σ"), x2="hi:Q", y=alt.Y("y0:Q", title="count"), y2="y1:Q",
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


def _square(images) -> tuple[np.ndarray, int]:
    """(n, side, side) float64 from (n, side²) or (n, side, side)."""
    images = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    side = int(round(images.shape[1] ** 0.5))
    if side * side != images.shape[1]:
        raise ValueError(f"images of {images.shape[1]} pixels are not square")
    return images.reshape(len(images), side, side), side


def digits_chart(images, titles, columns: int = 10, size: int = 56) -> alt.FacetChart:
    """Square images (n, side²) in [0, 1] (8×8 digits, 28×28 MNIST) as small heatmaps with a title each."""
    images, side = _square(images)
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
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
    """Square signed images (n, side²), e.g. a direction's first-layer weights per hidden unit (8×8) or a conv
    kernel per channel (k×k), on a diverging scale."""
    images, side = _square(images)
    lim = float(np.abs(images).max()) or 1.0
    rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    df = pd.concat([pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "value": img.ravel(),
                                  "pixel": (rows * side + cols).ravel(), "title": t, "n": i})
                    for i, (img, t) in enumerate(zip(images, titles))])
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=[-lim, lim], reverse=True),
                        title="weight"),
        tooltip=["title:N", "pixel:Q", alt.Tooltip("value:Q", format=".3g")],
    ).properties(width=size, height=size).facet(
        facet=alt.Facet("title:N", title=title or None, sort=alt.SortField("n")), columns=columns)


def matrix_heatmap(names, matrix, title: str, x_title: str, y_title: str, value: str = "value") -> alt.LayerChart:
    """A small labelled square heatmap with the values written in."""
    names = list(names)
    df = pd.DataFrame([{"row": r, "column": c, value: float(matrix[i][j])}
                       for i, r in enumerate(names) for j, c in enumerate(names)])
    base = alt.Chart(df).encode(x=alt.X("column:N", sort=names, title=x_title),
                                y=alt.Y("row:N", sort=names, title=y_title))
    rect = base.mark_rect().encode(color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="viridis")),
                                   tooltip=["row:N", "column:N", alt.Tooltip(f"{value}:Q", format=".4g")])
    text = base.mark_text(color="white").encode(text=alt.Text(f"{value}:Q", format=".3g"))
    return alt.layer(rect, text).properties(title=title, width=320, height=320)


def block_heatmap(names, matrix, title: str = "‖(J − I) block‖_F") -> alt.LayerChart:
    """Per-block norms of J − I: rows where the effect lands, columns where the nudge was made."""
    return matrix_heatmap(names, matrix, title, "perturbed at init (column block)",
                          "effect after training (row block)", "norm")


def series_chart(series: dict, y_title: str, log_y: bool = True, title: str = "", x_title: str = "index",
                 floor: float = 1e-16, fractions: bool = False) -> alt.Chart:
    """Several curves y(index) on one chart (x as index / length with `fractions`), thinned under the row limit."""
    per = max(50, MAX_ROWS // max(1, len(series)))
    parts = []
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        x = np.arange(len(values)) / (len(values) if fractions else 1)
        df = pd.DataFrame({"x": x, "y": np.maximum(values, floor) if log_y else values, "series": name})
        parts.append(_thin(df, per))
    scale = alt.Scale(type="log") if log_y else alt.Scale()
    return alt.Chart(pd.concat(parts)).mark_line(strokeWidth=1.5).encode(
        x=alt.X("x:Q", title=x_title), y=alt.Y("y:Q", title=y_title, scale=scale),
        color=alt.Color("series:N", title=None),
        tooltip=["series:N", alt.Tooltip("x:Q", title=x_title), alt.Tooltip("y:Q", format=".4g", title=y_title)],
    ).properties(title=title, height=280)


def overlap_chart(ks, overlaps: dict, baseline, title: str = "Bulk overlap") -> alt.LayerChart:
    """Mean principal cosine against subspace rank k, with the random-subspace baseline dashed."""
    ks = np.asarray(ks)
    df = pd.concat([pd.DataFrame({"k": ks, "overlap": np.asarray(v), "pair": name}) for name, v in overlaps.items()])
    base = pd.DataFrame({"k": ks, "overlap": np.asarray(baseline), "pair": "random subspaces"})
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("k:Q", title="subspace rank k", scale=alt.Scale(type="log")),
        y=alt.Y("overlap:Q", title="mean cosine of principal angles", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("pair:N", title=None),
        tooltip=["pair:N", "k:Q", alt.Tooltip("overlap:Q", format=".3f")])
    dashed = alt.Chart(base).mark_line(strokeDash=[5, 4], color="gray").encode(
        x="k:Q", y="overlap:Q", tooltip=["pair:N", "k:Q", alt.Tooltip("overlap:Q", format=".3f")])
    return alt.layer(dashed, lines).properties(title=title, height=280)


def kl_chart(kl: dict) -> alt.Chart:
    """Max-over-inputs KL per singular index, one colour per input set, log scale."""
    return series_chart(kl, "max KL(p ‖ p perturbed) (nats)", True, "Output change when θ_T moves along v_i",
                        "singular index i", floor=1e-12)


def linearity_chart(lin) -> alt.HConcatChart:
    """|δ·u_k|, ‖δ − (δ·u_k)u_k‖ and the prediction εσ_k against ε (log-log), and the test loss."""
    df = pd.concat([pd.DataFrame({"eps": lin.eps, "value": np.maximum(v, 1e-16), "curve": name})
                    for name, v in (("|δ·u_k| (measured)", lin.along), ("‖δ − (δ·u_k)u_k‖", lin.across),
                                    ("ε σ_k (predicted by J)", lin.predicted))])
    resp = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("eps:Q", scale=alt.Scale(type="log"), title="ε"),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title="size of the change in θ_T"),
        color=alt.Color("curve:N", title=None),
        strokeDash=alt.condition(alt.datum.curve == "ε σ_k (predicted by J)", alt.value([5, 4]), alt.value([1, 0])),
        tooltip=["curve:N", alt.Tooltip("eps:Q", format=".3g"), alt.Tooltip("value:Q", format=".4g")],
    ).properties(title=f"Retraining from θ_0 + ε v_{lin.index}", width=360, height=260)
    loss = alt.Chart(pd.DataFrame({"eps": lin.eps, "test loss": lin.test_loss})).mark_line(point=True).encode(
        x=alt.X("eps:Q", scale=alt.Scale(type="log"), title="ε"), y=alt.Y("test loss:Q", title="test loss (nats)"),
        tooltip=[alt.Tooltip("eps:Q", format=".3g"), alt.Tooltip("test loss:Q", format=".4f")],
    ).properties(title="Test loss after retraining", width=300, height=260)
    return alt.hconcat(resp, loss)


def subspace_chart(ks, losses: dict) -> alt.Chart:
    """Final test loss of training restricted to k singular directions, per kind of subspace."""
    df = pd.concat([pd.DataFrame({"k": np.asarray(ks), "test loss": np.asarray(v), "subspace": name})
                    for name, v in losses.items()])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("k:Q", title="dimensions k trained"), y=alt.Y("test loss:Q", title="final test loss (nats)"),
        color=alt.Color("subspace:N", title=None),
        tooltip=["subspace:N", "k:Q", alt.Tooltip("test loss:Q", format=".4f")],
    ).properties(title="Training restricted to θ_0 + Bᵀc", height=280)


def block_share_chart(names, shares, title: str = "share of ‖v‖² per parameter block") -> alt.Chart:
    """Bar chart of how a unit vector's squared norm splits over parameter blocks."""
    df = pd.DataFrame({"block": list(names), "share": np.asarray(shares, dtype=np.float64)})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("block:N", sort=list(names)), y=alt.Y("share:Q", title="share of ‖v‖²", scale=alt.Scale(domain=[0, 1])),
        tooltip=["block:N", alt.Tooltip("share:Q", format=".4f")],
    ).properties(title=title, width=300, height=200)
