"""Matplotlib figures of a report, each returned as PNG bytes (Agg backend, no display needed).

- :func:`traces`: prediction vs gold over time, one panel per recording;
- :func:`scatter`: prediction vs gold over every labelled step, with the identity line;
- :func:`curves`: training loss and devel CCC per epoch, one line per seed, best epoch marked;
- :func:`comparison`: devel CCC per run and target, mean ± std over seeds where known;
- :func:`confusion`: a confusion matrix of segment classes.
"""

from __future__ import annotations

import io

import numpy as np

from emotrace.errors import EmotraceError

DPI = 90


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise EmotraceError('reports need matplotlib: pip install "emotrace[report]".') from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def traces(items: list, *, target: str, title: str) -> bytes:
    """``items``: :class:`~emotrace.report.inputs.Trace` objects, one panel each."""
    return _png(traces_figure(items, target=target, title=title))


def traces_figure(items: list, *, target: str, title: str):
    """The matplotlib figure of :func:`traces`."""
    plt = _plt()
    # constrained layout keeps each panel's title clear of the tick labels of the panel above
    fig, axes = plt.subplots(len(items), 1, figsize=(9, 1.9 * len(items) + 0.6), squeeze=False,
                             sharex=False, layout="constrained")
    for ax, tr in zip(axes[:, 0], items, strict=True):
        if tr.gold is not None:
            ax.plot(tr.seconds, tr.gold, color="black", lw=1.2, label="gold")
        ax.plot(tr.seconds, tr.prediction, color="tab:orange", lw=1.2, label="prediction")
        ax.set_ylabel(target)
        ax.set_title(tr.recording, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10)
    return fig


def scatter(gold: np.ndarray, prediction: np.ndarray, *, target: str, title: str) -> bytes:
    plt = _plt()
    ok = np.isfinite(gold) & np.isfinite(prediction)
    g, p = gold[ok], prediction[ok]
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    if len(g) > 20_000:  # keep the PNG small; a random subset shows the same cloud
        keep = np.random.default_rng(0).choice(len(g), 20_000, replace=False)
        g, p = g[keep], p[keep]
    ax.scatter(g, p, s=3, alpha=0.25, color="tab:blue", rasterized=True)
    if len(g):
        lo, hi = float(min(g.min(), p.min())), float(max(g.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--", label="prediction = gold")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel(f"gold {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def curves(histories: list[tuple[int, list[dict]]], *, best_seed, title: str) -> bytes:
    """Train loss and the devel score per epoch (``devel_ccc``, or e.g. ``devel_f1_macro`` of a
    classifier: the first ``devel_*`` key of the history)."""
    plt = _plt()
    keys = [k for _, hist in histories for h in hist for k in h if k.startswith("devel_")]
    key = keys[0] if keys else "devel_ccc"
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for seed, hist in histories:
        ep = [h.get("epoch", i + 1) for i, h in enumerate(hist)]
        style = {"lw": 2.0 if seed == best_seed else 1.0, "label": f"seed {seed}"
                 + (" (kept)" if seed == best_seed else "")}
        a1.plot(ep, [h.get("train_loss", np.nan) for h in hist], **style)
        dev = [np.nan if h.get(key) is None else h[key] for h in hist]
        line, = a2.plot(ep, dev, **style)
        if np.isfinite(dev).any():
            i = int(np.nanargmax(dev))
            a2.plot([ep[i]], [dev[i]], "o", color=line.get_color())
    a1.set_title("train loss", fontsize=9)
    what = "CCC (mean over targets)" if key == "devel_ccc" else key.removeprefix("devel_")
    a2.set_title(f"devel {what}; dot = best epoch", fontsize=9)
    for a in (a1, a2):
        a.set_xlabel("epoch")
        a.xaxis.get_major_locator().set_params(integer=True)
        a.grid(alpha=0.3)
    a2.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def comparison(rows: list[dict], *, metric: str = "ccc") -> bytes:
    """``rows``: ``{"run", "target", "value", "std"}`` (std may be None)."""
    plt = _plt()
    runs = list(dict.fromkeys(r["run"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    width = 0.8 / max(len(targets), 1)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(runs) * max(len(targets), 1) ** 0.5), 3.6))
    for k, t in enumerate(targets):
        xs, vals, errs = [], [], []
        for i, run in enumerate(runs):
            r = next((r for r in rows if r["run"] == run and r["target"] == t), None)
            if r is not None:
                xs.append(i + (k - (len(targets) - 1) / 2) * width)
                vals.append(r["value"])
                errs.append(r["std"] or 0.0)
        bars = ax.bar(xs, vals, width, yerr=errs, capsize=3, label=t)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_xticks(range(len(runs)), runs, rotation=20 if len(runs) > 3 else 0)
    ax.set_ylabel(metric)
    ax.axhline(0, color="black", lw=0.8)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} per run (error bar: std over seeds, from metrics.json)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def confusion(gold: np.ndarray, predicted: np.ndarray, *, target: str, title: str) -> bytes:
    plt = _plt()
    ok = np.isfinite(gold) & np.isfinite(predicted) & (gold >= 0)
    g, p = gold[ok].astype(int), predicted[ok].astype(int)
    k = int(max(g.max(initial=0), p.max(initial=0))) + 1
    m = np.zeros((k, k), int)
    np.add.at(m, (g, p), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * k, 1.0 + 0.6 * k))
    ax.imshow(m, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel(f"gold class ({target})")
    ax.set_title(title, fontsize=9)
    return _png(fig)
