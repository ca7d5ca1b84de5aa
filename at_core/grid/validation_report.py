"""A sweep's statistics where a trader looks: the terminal table, plots (PNG), the SQLite
summary beside the results, and the sweep's MLflow parent run (metrics + plots)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from at_core.grid.out_of_sample import OutOfSample
from at_core.grid.results import ResultStore
from at_core.grid.stability import heat_map
from at_core.grid.validation import Combination, Validation


def _f(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "never" if v > 0 else "-inf"
    return f"{v:.{digits}f}"


def _combo(c: Combination, metric: str) -> list[str]:
    ps = ", ".join(f"{k}={v}" for k, v in c.params.items()) or "(base)"
    mval = f"{c.metric:.4g}" if isinstance(c.metric, float) else str(c.metric)
    return [
        f"    {ps}  (result id {c.result_id})",
        f"    {metric} {mval}; Sharpe {_f(c.sharpe_ann, 2)} a year ({_f(c.sharpe_day, 4)} a day); "
        f"PSR {_f(c.psr)}; DSR {_f(c.dsr)}; min track record "
        + (
            "n/a (Sharpe <= 0)"
            if math.isinf(c.min_track_record_days)
            else f"{c.min_track_record_days:,.0f} days"
        ),
    ]


def render(v: Validation) -> str:
    """The report as text (``grid validate``)."""
    flag = (
        f"  ** FLAGGED: DSR {_f(v.winner.dsr)} < {v.dsr_min}: the winner's Sharpe is not "
        f"credibly above what the best of {v.n_eff:,.0f} independent trials reaches by luck **"
        if v.winner_flagged
        else f"  DSR {_f(v.winner.dsr)} >= {v.dsr_min}: the edge survives the deflation"
    )
    lines = [
        f"sweep {v.run_id}: {v.n_combinations:,} combinations"
        + (f" ({v.n_failed} failed, left out)" if v.n_failed else "")
        + f", {v.n_days} days {v.first_day} .. {v.last_day} (daily returns, per-day Sharpe)",
        f"  effective independent trials N_eff {v.n_eff:,.1f} (mean squared correlation "
        f"{_f(v.mean_sq_corr, 4)} before the sampling-noise correction; {v.n_flat} never traded)",
        f"  Sharpe spread across combinations {_f(v.sharpe_sd_day, 4)} a day; deflated "
        f"threshold SR0 {_f(v.threshold_day, 4)} a day = {_f(v.threshold_ann, 2)} a year",
        f"  winner by {v.metric} ({v.mode}):",
        *_combo(v.winner, v.metric),
        flag,
    ]
    if v.best_sharpe.result_id != v.winner.result_id:
        lines += ["  highest Sharpe:", *_combo(v.best_sharpe, v.metric)]
    if v.pbo is None:
        lines.append(f"  PBO: n/a ({v.pbo_note})")
    else:
        lines += [
            f"  PBO {_f(v.pbo)} by CSCV: {v.pbo_blocks} blocks, {v.pbo_splits:,} splits, "
            f"purge {v.purge_days} day(s) after each boundary (embargo {v.embargo_minutes} min)"
            + (f"; {v.pbo_note}" if v.pbo_note else ""),
            f"  out-of-sample vs in-sample Sharpe of the selected combination: slope "
            f"{_f(v.oos_is_slope)}, intercept {_f(v.oos_is_intercept, 4)}; P(out-of-sample "
            f"loss) {_f(v.prob_oos_loss)}",
        ]
    for oos in (v.walk_forward, v.holdout):
        if oos is not None:
            lines += _out_of_sample(oos)
    if v.stability:
        lines.append(
            f"  parameter stability: {v.metric} of the top combinations and of their grid "
            "neighbours (one step in one key)"
        )
        for n in v.stability:
            ps = ", ".join(f"{k}={x}" for k, x in n.params.items())
            lines.append(
                f"    #{n.rank} {_f(n.metric, 4)}: {n.n_neighbours} neighbours, median "
                f"{_f(n.median, 4)}, worst {_f(n.worst, 4)}"
                + (f", keeps {100 * n.kept:.0f}%" if n.kept is not None else "")
                + f" -> {n.verdict}  ({ps})"
            )
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:+.2f}%"


def _out_of_sample(o: OutOfSample) -> list[str]:
    title = "walk-forward" if o.kind == "walk_forward" else "hold-out"
    lines = [
        f"  {title}: {len(o.windows)} window(s), chosen by {o.select_by} on the training days, "
        f"test days {o.purge_days} day(s) after them",
    ]
    shown = o.windows if len(o.windows) <= 12 else o.windows[:6] + o.windows[-6:]
    for w in shown:
        ps = ", ".join(f"{k}={x}" for k, x in w.params.items()) or "(base)"
        lines.append(
            f"    train {w.train_from}..{w.train_to} ({_pct(w.is_return)}, Sharpe "
            f"{_f(w.is_sharpe_ann, 2)}) -> test {w.test_from}..{w.test_to} {_pct(w.oos_return)}: "
            f"{ps}"
        )
    if len(o.windows) > len(shown):
        lines.insert(1 + 6, f"    ... {len(o.windows) - 12} more windows ...")
    lines += [
        f"    out of sample ({o.oos_days} days, stitched): {_pct(o.oos_return)} "
        f"({_pct(o.oos_return_ann)} a year), Sharpe {_f(o.oos_sharpe_ann, 2)}",
        f"    in sample (mean of the choices): Sharpe {_f(o.is_sharpe_ann_mean, 2)}, "
        f"{_pct(o.is_return_ann_mean)} a year",
        f"    degradation: Sharpe out/in {_f(o.sharpe_ratio_oos_is, 2)}; walk-forward "
        f"efficiency (annual return out/in) {_f(o.efficiency, 2)}",
    ]
    return lines


def plots(v: Validation, out_dir: Path) -> list[Path]:
    """PBO's logit histogram, OOS vs IS Sharpe of the selected combinations, and every
    combination's DSR against its Sharpe (winner marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if v.logits:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4))
        lg = np.asarray(v.logits)
        ax[0].hist(lg[np.isfinite(lg)], bins=40, color="#4C72B0")
        ax[0].axvline(0, color="k", lw=1)
        ax[0].set_title(f"CSCV logits (PBO = {v.pbo:.3f}: share at or left of 0)")
        ax[0].set_xlabel("logit of the selected combination's out-of-sample rank")
        x, y = np.asarray(v.is_sharpe), np.asarray(v.oos_sharpe)
        ax[1].scatter(x, y, s=4, alpha=0.3)
        if v.oos_is_slope is not None and math.isfinite(v.oos_is_slope):
            xs = np.linspace(x.min(), x.max(), 10)
            ax[1].plot(xs, (v.oos_is_intercept or 0.0) + v.oos_is_slope * xs, "r-",
                       label=f"slope {v.oos_is_slope:.2f}")  # fmt: skip
            ax[1].legend()
        ax[1].axhline(0, color="k", lw=0.5)
        ax[1].set_xlabel("in-sample Sharpe (per day)")
        ax[1].set_ylabel("out-of-sample Sharpe (per day)")
        ax[1].set_title("selected combination, per split")
        fig.tight_layout()
        p = out_dir / f"{v.run_id}-pbo.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    for o in (v.walk_forward, v.holdout):
        if o is None or not o.curve:
            continue
        fig, ax = plt.subplots(figsize=(9, 4))
        t = np.asarray(o.curve_days, dtype="datetime64[D]")
        ax.step(t, np.cumprod(1.0 + np.asarray(o.curve)), where="post", label="out of sample")
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_ylabel("growth of 1 (stitched test days)")
        ax.set_title(
            f"{o.kind.replace('_', '-')}: {len(o.windows)} window(s), chosen by {o.select_by}; "
            f"OOS Sharpe {_f(o.oos_sharpe_ann, 2)} vs IS {_f(o.is_sharpe_ann_mean, 2)}"
        )
        fig.autofmt_xdate()
        fig.tight_layout()
        p = out_dir / f"{v.run_id}-{o.kind}.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    if v.grid is not None and v.heat_keys is not None:
        kx, ky = v.heat_keys
        paths.append(heat_map(v.grid, v.winner_row, kx, ky, out_dir / f"{v.run_id}-stability.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    ok = np.isfinite(v.dsr) & np.isfinite(v.sharpe_day)
    ax.scatter(v.sharpe_day[ok] * math.sqrt(365), v.dsr[ok], s=5, alpha=0.4, label="combinations")
    ax.scatter(
        [v.winner.sharpe_ann], [v.winner.dsr], color="r", s=40, label=f"winner by {v.metric}"
    )
    ax.axhline(v.dsr_min, color="r", lw=0.8, ls="--", label=f"flag below {v.dsr_min}")
    ax.axvline(v.threshold_ann, color="k", lw=0.8, ls=":", label="deflated threshold")
    ax.set_xlabel("Sharpe (annualised)")
    ax.set_ylabel("deflated Sharpe ratio")
    ax.set_title(f"DSR with N_eff = {v.n_eff:,.0f}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = out_dir / f"{v.run_id}-dsr.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    return paths


def record(
    v: Validation, store: ResultStore, mlflow_uri: str | None, mlflow_run_id: str | None
) -> None:
    """Keep the summary in SQLite and, if the sweep has an MLflow parent run, log the
    headline numbers as its metrics and the plots as its artifacts."""
    store.save_validation(v.run_id, v.summary())
    if not (mlflow_uri and mlflow_run_id):
        return
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    client.log_batch(mlflow_run_id, metrics=[Metric(k, x, 0, 0) for k, x in v.metrics().items()])
    client.set_tag(mlflow_run_id, "validation.winner_flagged", str(v.winner_flagged).lower())
    with tempfile.TemporaryDirectory() as tmp:
        for p in plots(v, Path(tmp)):
            client.log_artifact(mlflow_run_id, str(p), artifact_path="validation")
        summary = Path(tmp) / "validation.txt"
        summary.write_text(render(v) + "\n")
        client.log_artifact(mlflow_run_id, str(summary), artifact_path="validation")


def summary_line(s: dict[str, Any] | None) -> str | None:
    """One line from a stored summary (``grid show``)."""
    if not s:
        return None
    w = s.get("winner") or {}
    pbo = s.get("pbo")
    return (
        f"validation: winner DSR {_f(w.get('dsr'))}"
        + (" (FLAGGED: below " + str(s.get("dsr_min")) + ")" if s.get("winner_flagged") else "")
        + f", N_eff {s.get('n_eff', 0):,.1f}, PBO {_f(pbo)}"
    )
