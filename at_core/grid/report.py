"""Sweep reports: equity curves of the top N (MLflow artifact) and the §21.3 sensitivity report.

Both re-use the kernels: the top-N curves re-run the Rust backtester on the driver for the N
best parameter sets (stage 1 once, stage 2 per feature point), the sensitivity report reads
the stored ``grid_search_results``. Plots use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from at_core.config import Settings
from at_core.grid.results import ResultStore


def top_equity_plot(
    db_dir: Path,
    rows: list[tuple[dict[str, Any], dict[str, Any]]],
    swept: list[str],
    path: Path,
    metric: str,
) -> Path:
    """Re-run the best parameter sets and plot their equity curves into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import json

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    from at_core.backtest import run_backtest
    from at_core.backtest.table import minute_table
    from at_core.features.engine import stage2
    from at_core.grid.evaluate import stage1_for

    # The legend names only the settings that differ among these rows (a label cut at a
    # fixed width used to end before the one that did); the shared ones go in the title.
    differ = [k for k in swept if len({json.dumps(p.get(k)) for p, _ in rows}) > 1]
    common = [k for k in swept if k not in differ]
    fig, ax = plt.subplots(figsize=(11, 5))
    stage1_cache: dict[str, Any] = {}
    for rank, (params, metrics) in enumerate(rows, 1):
        settings = Settings.model_validate(params)
        key = repr({k: getattr(settings, k) for k in Settings.keys_of_stage("stage1")})
        if key not in stage1_cache:
            stage1_cache[key] = stage1_for(db_dir, settings)
        s1 = stage1_cache[key]
        table = minute_table({**s1, **stage2(s1, settings)}, use_bvc=settings.use_bvc_fallback)
        res = run_backtest(table, settings)
        t = np.asarray(table["ts_min"], dtype="datetime64[ms]")
        value = metrics.get(metric)
        shown = "n/a" if value is None else f"{value:.4g}"
        label = f"#{rank} {metric}={shown}" + (
            ": " + ", ".join(f"{k}={params[k]}" for k in differ) if differ else ""
        )
        ax.plot(t, res.equity, lw=1.1, label=label)
    title = f"equity of the top {len(rows)} parameter sets"
    if common and rows:
        shared = ", ".join(f"{k}={rows[0][0].get(k)}" for k in common)
        title += f"\nall with {shared}"
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("equity (USDT)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sensitivity_report(
    db_dir: Path, run_id: str, out_dir: Path, metric: str = "net_pnl"
) -> dict[str, Any]:
    """Per swept key and value: mean, median and best ``metric`` over all other keys.

    Writes ``sensitivity.md`` (tables) and ``sensitivity.png`` (one panel per key) to
    ``out_dir`` and returns the tables.
    """
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = ResultStore(db_dir)
    info = store.run_info(run_id)
    if info is None:
        from at_core.errors import StorageError

        raise StorageError(f"no grid run {run_id!r}")
    swept = list(json.loads(info["grid_json"])["params"])
    rows = store.results(run_id)
    tables: dict[str, list[dict[str, Any]]] = {}
    for key in swept:
        by_value: dict[Any, list[float]] = {}
        for p, m in rows:
            v = m.get(metric)
            if v is not None:
                by_value.setdefault(json.dumps(p[key]), []).append(float(v))
        tables[key] = [
            {
                "value": json.loads(v),
                "n": len(xs),
                "mean": statistics.fmean(xs),
                "median": statistics.median(xs),
                "best": max(xs),
                "worst": min(xs),
            }
            for v, xs in by_value.items()
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Sensitivity of `{metric}` — run {run_id} ({len(rows)} combinations)", ""]
    for key, tab in tables.items():
        lines += [
            f"## {key}",
            "",
            f"| {key} | n | mean | median | best | worst |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['value']} | {r['n']} | {r['mean']:.2f} | {r['median']:.2f} | {r['best']:.2f} | {r['worst']:.2f} |"
            for r in tab
        ]
        lines.append("")
    (out_dir / "sensitivity.md").write_text("\n".join(lines))
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, (key, tab) in zip(axes[0], tables.items(), strict=True):
        # Points on an axis scaled to the data, not bars from zero: a bar from zero makes
        # -1,243 and -1,320 look the same.
        xs = list(range(len(tab)))
        ax.vlines(xs, [r["worst"] for r in tab], [r["best"] for r in tab], color="#999999",
                  lw=3, alpha=0.5, label="worst .. best")  # fmt: skip
        ax.plot(xs, [r["median"] for r in tab], "s-", color="#4a78b5", label="median")
        ax.plot(xs, [r["mean"] for r in tab], "d", color="#e08a1e", ms=5, label="mean")
        ax.set_xticks(xs, [str(r["value"]) for r in tab])
        lo = min((r["worst"] for r in tab), default=0.0)
        hi = max((r["best"] for r in tab), default=0.0)
        pad = (hi - lo) * 0.08 or max(abs(hi), 1.0) * 0.05
        ax.set_ylim(lo - pad, hi + pad)
        if lo <= 0 <= hi:
            ax.axhline(0, color="black", lw=0.6)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"sensitivity of {metric} (run {run_id})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "sensitivity.png", dpi=110)
    plt.close(fig)
    return tables
