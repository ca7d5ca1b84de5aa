"""Validated configuration: ``configs/default.yaml`` + overrides + ``.env`` secrets.

SPEC §17.3 fixes the key names and defaults; every key there is a field here with the same
name (additions allowed, renames never). Each field carries a ``stage`` tag saying which part
of the pipeline it changes, so the grid search can split a sweep into a *feature* grid (stage
1/2: features must be recomputed) and a *strategy* grid (run inside the Rust batch runner)
from this model alone, never from a hand-kept list.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from at_core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "configs" / "default.yaml"

Stage = Literal["meta", "stage1", "stage2", "strategy", "execution", "live"]


def _f(default: Any, stage: Stage, description: str, **kw: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"stage": stage}, **kw)


class Settings(BaseModel):
    """Every tunable of the system (SPEC §17.3 plus documented additions)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    instrument: str = _f("BTCUSDT", "meta", "Exchange symbol")
    exchange: Literal["bybit"] = _f("bybit", "meta", "Venue")
    timeframe: Literal["1m"] = _f("1m", "meta", "Primary timeframe (only 1m in v0)")
    rolling_window_minutes: int = _f(240, "stage2", "Rolling profile window", ge=1, le=10080)

    # Value area
    va_fraction: float = _f(0.70, "stage2", "Share of volume inside the VA", gt=0.0, le=1.0)
    base_bin_ticks: int = _f(1, "stage1", "Base histogram resolution in ticks", ge=1, le=1000)
    alpha_bin: float = _f(0.25, "stage2", "bin_width = alpha * mid * sigma_240", gt=0.0, le=100.0)
    bin_width_max_ticks: int = _f(200, "stage2", "Upper clamp of the bin width", ge=1, le=100000)
    rebucket_interval_minutes: int = _f(15, "stage2", "Forced rebucket period", ge=1, le=1440)
    rebucket_change_pct: float = _f(
        0.25, "stage2", "Relative change forcing a rebucket", ge=0.0, le=10.0
    )
    min_va_bins: int = _f(20, "stage2", "Bins with volume needed for a valid VA", ge=1, le=100000)

    # Initiative
    max_quote_staleness_ms: int = _f(
        250, "stage1", "Quote age beyond which a match is flagged stale", ge=0, le=3_600_000
    )
    ambiguous_trade_frac_max: float = _f(
        0.35, "strategy", "High-ambiguity threshold", ge=0.0, le=1.0
    )
    use_tick_rule_fallback: bool = _f(True, "stage1", "Tick rule for trades inside the spread")

    # Quote imbalance
    use_qimb: bool = _f(True, "strategy", "Use quote imbalance confirmations")
    qimb_entry_min: float = _f(0.10, "strategy", "Break-in qimb threshold", ge=-1.0, le=1.0)
    qimb_breakout_min: float = _f(0.10, "strategy", "Breakout qimb threshold", ge=-1.0, le=1.0)
    qimb_fail_min: float = _f(-0.10, "strategy", "Failed-breakout qimb threshold", ge=-1.0, le=1.0)
    qimb_ema_span_seconds: float = _f(
        60, "stage1", "Time constant of the qimb EMA", gt=0.0, le=86400.0
    )
    spread_lookback_minutes: int = _f(60, "stage2", "Window of spread_avg", ge=1, le=10080)
    max_gap_minutes: int = _f(
        5,
        "stage1",
        "Eventless minutes after which the data counts as stopped (a gap: no minute is"
        " invented, the rolling state restarts, the backtest flattens)",
        ge=0,
        le=1440,
    )

    # Order-flow thresholds
    of_entry_min: float = _f(0, "strategy", "Break-in OF_1m threshold (raw)")
    of_entry_min_norm: float = _f(0.1, "strategy", "Break-in OF_norm threshold", ge=-1.0, le=1.0)
    of_breakout_min: float = _f(0, "strategy", "Breakout OF_1m threshold (raw)")
    of_breakout_min_norm: float = _f(0.1, "strategy", "Breakout OF_norm threshold", ge=-1.0, le=1.0)
    of_fail_min: float = _f(0, "strategy", "Failed-breakout OF_1m threshold (raw)")
    of_fail_min_norm: float = _f(
        -0.1, "strategy", "Failed-breakout OF_norm threshold", ge=-1.0, le=1.0
    )

    # Acceptance
    accept_outside_k: int = _f(3, "strategy", "Consecutive closes outside the VA", ge=1, le=1000)

    # Sizing
    risk_pct: float = _f(
        0.02, "strategy", "Risk per trade as a share of available margin", gt=0.0, le=1.0
    )
    max_leverage: float = _f(10, "strategy", "Leverage cap", gt=0.0, le=100.0)
    # SPEC §7.2 "always cross margin": sizing and the kill switch assume it
    margin_mode: Literal["cross"] = _f("cross", "execution", "Margin mode (cross only)")

    # Partial exits
    tp1_pct: float = _f(0.30, "strategy", "Share closed at TP1", ge=0.0, le=1.0)
    tp2_pct: float = _f(0.70, "strategy", "Share closed at TP2", ge=0.0, le=1.0)
    move_stop_to_breakeven_after_tp1: bool = _f(True, "strategy", "Stop to entry after TP1")

    # Risk
    max_hold_minutes: int = _f(60, "strategy", "Time stop", ge=1, le=100000)
    extend_if_profitable: bool = _f(True, "strategy", "Extend the time stop while in profit")
    cooldown_minutes: int = _f(3, "strategy", "Global cooldown after an exit", ge=0, le=100000)
    stop_buffer_ticks: int = _f(2, "strategy", "Ticks beyond the structural stop", ge=0, le=100000)

    # Execution
    fill_on_next_quote: bool = _f(
        True, "strategy", "Fill market orders at the first quote after the decision"
    )
    slippage_ticks_entry: float = _f(1, "strategy", "Entry slippage in ticks", ge=0.0, le=10000.0)
    slippage_ticks_exit: float = _f(1, "strategy", "Exit slippage in ticks", ge=0.0, le=10000.0)
    # no venue pays takers: a negative taker fee would turn every trade into income
    taker_fee_bps: float = _f(5, "strategy", "Taker fee, bps of notional", ge=0.0, le=100.0)
    maker_fee_bps: float = _f(
        -1, "strategy", "Maker fee, bps (negative = rebate)", ge=-100.0, le=100.0
    )
    limit_order_timeout_minutes: int = _f(
        1, "strategy", "Limit entry converts to market after", ge=0, le=1440
    )
    use_limit_for_entry: bool = _f(True, "strategy", "Limit orders for entries")
    use_market_for_exit: bool = _f(True, "strategy", "Market orders for exits")

    # Backtest
    funding_rate_8h_bps: float = _f(
        1, "strategy", "Fixed funding per 8 h, bps", ge=-1000.0, le=1000.0
    )
    backtest_workers: int | Literal["auto"] = _f("auto", "meta", "Parallel workers; auto = CPU/2")
    # Research statistics of sweeps (`grid validate`)
    validation_dsr_min: float = _f(
        0.95, "meta", "A sweep winner whose deflated Sharpe is below this is flagged",
        gt=0.0, lt=1.0,
    )  # fmt: skip
    validation_cscv_blocks: int = _f(
        16, "meta", "CSCV blocks S for PBO (even; fewer when the history is too short)",
        ge=2, le=20, multiple_of=2,
    )  # fmt: skip
    # dashboard colours (SPEC §14.2, §9.5): amber from the warn level; red from
    # ambiguous_trade_frac_max (the strategy's high-ambiguity rule) and heat_alert
    dashboard_ambiguous_warn: float = _f(
        0.2, "meta", "Dashboard: ambiguous trade share shown amber from here", ge=0.0, le=1.0
    )
    dashboard_heat_warn: float = _f(
        0.03, "meta", "Dashboard: heat (risk / margin) shown amber from here", ge=0.0, le=100.0
    )
    dashboard_heat_alert: float = _f(
        0.05, "meta", "Dashboard: heat shown red from here", ge=0.0, le=100.0
    )

    # Modes
    enable_retest_mode: bool = _f(True, "strategy", "Breakouts wait for a retest")
    enable_flip_on_signal: bool = _f(True, "strategy", "Opposite signal flips the position")

    # Monitoring
    state_snapshot_interval_minutes: int = _f(5, "live", "Periodic snapshot period", ge=1, le=1440)
    log_features_every_minute: bool = _f(True, "live", "Log the full feature row each minute")

    # Startup
    require_manual_activation: bool = _f(True, "live", "Operator must activate trading")
    warmup_minutes: int = _f(
        240, "stage2", "Minutes of data before the value area is tradeable", ge=0, le=100000
    )

    # ---- additions ----
    tick_size: float = _f(0.10, "stage1", "Instrument tick size", gt=0.0)
    qty_step: float = _f(0.001, "strategy", "Instrument quantity step", gt=0.0)
    min_qty: float = _f(0.001, "strategy", "Instrument minimum order quantity", gt=0.0)
    min_notional: float = _f(5.0, "strategy", "Instrument minimum order notional (USDT)", ge=0.0)
    quote_match: Literal["strictly_before", "at_or_before"] = _f(
        "strictly_before", "stage1", "Trade-to-quote tie rule (see configs/default.yaml)"
    )
    mlflow_tracking_uri: str | None = _f(
        None,
        "meta",
        "MLflow tracking URI of grid sweeps; null = sqlite:///<DATABASE_DIR>/mlflow.db",
    )
    side_source: Literal["inferred", "exchange"] = _f(
        "inferred", "stage1", "Where trade sides come from"
    )
    use_bvc_fallback: bool = _f(
        False, "stage2", "Replace OF_1m by the BVC proxy (SPEC §5.9, manual only)"
    )
    bvc_lookback_minutes: int = _f(
        60, "stage2", "Window of the BVC price-change stdev", ge=2, le=10080
    )

    # strategy & backtest additions (issue 4; see configs/default.yaml for each choice)
    of_threshold_mode: Literal["raw", "norm", "either", "both"] = _f(
        "either", "strategy", "How raw and normalised OF thresholds combine (§17.3 either/or)"
    )
    qimb_signal_source: Literal["close", "ema"] = _f(
        "close", "strategy", "qimb read by the initiative rule"
    )
    limit_price_mode: Literal["close", "boundary"] = _f(
        "close", "strategy", "Limit entry price: bar close or VA boundary"
    )
    stop_fill_mode: Literal["worst_case", "tick_path"] = _f(
        "worst_case", "strategy", "Same-minute stop/target resolution (SPEC §10.5)"
    )
    funding_source: Literal["fixed", "history"] = _f(
        "fixed", "strategy", "Backtest funding: fixed rate (SPEC §12.3) or stored Bybit history"
    )
    max_daily_loss_pct: float = _f(
        0.06,
        "strategy",
        "Kill switch: daily loss share of opening equity (0 = off)",
        ge=0.0,
        lt=1.0,
    )
    crossing_spread_mult: float = _f(
        1.0, "strategy", "Boundary-crossing distance in spread_avg units", ge=0.0, le=100.0
    )
    pullback_spread_mult: float = _f(
        1.0, "strategy", "Retest pullback distance in spread_avg units", ge=0.0, le=100.0
    )
    initial_equity: float = _f(10_000.0, "strategy", "Backtest starting equity (USDT)", gt=0.0)

    # real Bybit history (issue 6; see configs/default.yaml)
    bybit_archive_base_url: str = _f(
        "https://public.bybit.com", "meta", "Base URL of Bybit's daily trade archives"
    )
    bybit_orderbook_base_url: str = _f(
        "https://quote-saver.bycsi.com", "meta", "Base URL of Bybit's ob500 order-book archives"
    )
    bybit_rest_base_url: str = _f(
        "https://api.bybit.com", "meta", "Base URL of Bybit's public REST API"
    )

    @field_validator("backtest_workers")
    @classmethod
    def _workers_positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be >= 1 or 'auto'")
        return v

    @model_validator(mode="after")
    def _no_setting_without_effect(self) -> Settings:
        """Two spec keys the engine cannot honour otherwise: refused, never ignored."""
        if abs(self.tp1_pct + self.tp2_pct - 1.0) > 1e-9:
            raise ValueError(
                f"tp2_pct: must be 1 - tp1_pct = {1.0 - self.tp1_pct:g} (what is left after "
                f"TP1 rides to TP2), got {self.tp2_pct:g}"
            )
        if self.maker_fee_bps < -self.taker_fee_bps:
            raise ValueError(
                f"maker_fee_bps: a rebate of {-self.maker_fee_bps:g} bps above the taker fee "
                f"{self.taker_fee_bps:g} bps is implausible (round trips would earn money)"
            )
        if self.dashboard_heat_warn > self.dashboard_heat_alert:
            raise ValueError(
                f"dashboard_heat_warn: {self.dashboard_heat_warn:g} is above "
                f"dashboard_heat_alert {self.dashboard_heat_alert:g} (amber must come first)"
            )
        if self.dashboard_ambiguous_warn > self.ambiguous_trade_frac_max:
            raise ValueError(
                f"dashboard_ambiguous_warn: {self.dashboard_ambiguous_warn:g} is above "
                f"ambiguous_trade_frac_max {self.ambiguous_trade_frac_max:g} (the red level)"
            )
        if not self.fill_on_next_quote:
            raise ValueError(
                "fill_on_next_quote: only true is supported (market orders fill at the first "
                "quote after the deciding close, SPEC §12.4)"
            )
        return self

    def effective_workers(self) -> int:
        """Worker count with ``auto`` resolved to CPU/2 (SPEC §12.5), at least 1."""
        if self.backtest_workers == "auto":
            return max(1, (os.cpu_count() or 2) // 2)
        return int(self.backtest_workers)

    @classmethod
    def stage_of(cls, key: str) -> Stage:
        """Pipeline stage a key belongs to (drives the grid split)."""
        field = cls.model_fields.get(key)
        if field is None:
            raise ConfigError(f"unknown config key `{key}`")
        extra = field.json_schema_extra
        assert isinstance(extra, dict)
        return extra["stage"]  # type: ignore[return-value]

    @classmethod
    def keys_of_stage(cls, *stages: Stage) -> list[str]:
        return [k for k in cls.model_fields if cls.stage_of(k) in stages]


class Secrets(BaseModel):
    """Secrets and paths from the environment / ``.env`` (SPEC §17.2); never in YAML."""

    bybit_api_key: str | None = None
    bybit_api_secret: str | None = None
    alert_webhook_url: str | None = None
    database_dir: Path = REPO_ROOT / "data"


def parse_override(item: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value read as YAML, so ``true``, ``0.3`` and ``auto`` type right)."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got `{item}`")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value `{raw}` is not valid YAML: {exc}") from exc
    return key, value


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping: plain YAML keeps the
    last one silently, so a setting written twice would be half-ignored."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key `{key}` given twice (lines {seen[key]} and {line})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (the error names both lines)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass


def _format_validation(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = err["msg"]
            if "input" in err and err["type"] != "missing":
                msg += f" (got {err['input']!r})"
        lines.append(f"{source}: key `{key}`: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    path: str | Path | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> Settings:
    """Load a YAML config (default ``configs/default.yaml``), apply overrides, validate.

    Overrides are ``key=value`` strings (as from ``--set``) or a mapping. Errors name the key
    and the file (or ``--set`` for an override) and are raised as :class:`ConfigError`.
    """
    cfg_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = cfg_path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {cfg_path}: {exc.strerror}") from exc
    try:
        data = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{cfg_path}: top level must be a mapping of keys to values")
    if "params" in data and not set(data) & set(Settings.model_fields):
        # `tune/grid.py --config` takes a grid file; every `auction-trader` command's
        # --config is the base config: say which is which instead of "unknown key params"
        raise ConfigError(
            f"{cfg_path}: this is a grid file (it has `params`), given where a base config is "
            "expected: `auction-trader grid run --grid FILE` (or `python tune/grid.py --config "
            "FILE`); --config / --base-config name the base config (configs/default.yaml)"
        )
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, str(cfg_path))) from None

    items = (
        overrides.items()
        if isinstance(overrides, Mapping)
        else (parse_override(o) for o in overrides)
    )
    merged = settings.model_dump()
    for key, value in items:
        if key not in Settings.model_fields:
            raise ConfigError(f"--set: key `{key}`: unknown key (not in {cfg_path.name})")
        merged[key] = value
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, "--set")) from None


def load_secrets(env_file: str | Path | None = None) -> Secrets:
    """Secrets from the process environment, falling back to a ``.env`` file (repo root)."""
    env_path = Path(env_file) if env_file is not None else REPO_ROOT / ".env"
    file_values = dotenv_values(env_path) if env_path.exists() else {}

    def get(name: str) -> str | None:
        return os.environ.get(name) or file_values.get(name) or None

    db = get("DATABASE_DIR")
    return Secrets(
        bybit_api_key=get("BYBIT_API_KEY"),
        bybit_api_secret=get("BYBIT_API_SECRET"),
        alert_webhook_url=get("ALERT_WEBHOOK_URL"),
        database_dir=Path(db) if db else REPO_ROOT / "data",
    )


def resolve_db_dir(cli_value: str | Path | None) -> Path:
    """``--db-dir`` wins, then ``DATABASE_DIR`` (env or .env), then ``data/``. A path that
    exists and is not a directory is refused here, before any command touches it."""
    p = Path(cli_value) if cli_value else load_secrets().database_dir
    if p.exists() and not p.is_dir():
        from at_core.errors import StorageError

        raise StorageError(f"DATABASE_DIR {p} is not a directory")
    return p


def settings_from_args(args: Any) -> Settings:
    """Settings for a CLI command: ``--config`` file plus ``--set`` overrides."""
    return load_settings(getattr(args, "config", None), getattr(args, "set", []) or [])


def db_dir_from_args(args: Any) -> Path:
    """The store directory of a CLI command (``--db-dir`` > ``DATABASE_DIR`` > ``data/``)."""
    return resolve_db_dir(getattr(args, "db_dir", None))
