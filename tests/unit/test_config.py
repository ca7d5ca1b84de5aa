"""Config: spec keys and defaults, validation errors naming key and file, overrides, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from at_core.config import (
    DEFAULT_CONFIG_PATH,
    Settings,
    load_secrets,
    load_settings,
    parse_override,
)
from at_core.errors import ConfigError

# SPEC §17.3, copied by hand from the spec: every key with its default.
SPEC_DEFAULTS = {
    "instrument": "BTCUSDT",
    "exchange": "bybit",
    "timeframe": "1m",
    "rolling_window_minutes": 240,
    "va_fraction": 0.70,
    "base_bin_ticks": 1,
    "alpha_bin": 0.25,
    "bin_width_max_ticks": 200,
    "rebucket_interval_minutes": 15,
    "rebucket_change_pct": 0.25,
    "min_va_bins": 20,
    "max_quote_staleness_ms": 250,
    "ambiguous_trade_frac_max": 0.35,
    "use_tick_rule_fallback": True,
    "use_qimb": True,
    "qimb_entry_min": 0.10,
    "qimb_breakout_min": 0.10,
    "qimb_fail_min": -0.10,
    "qimb_ema_span_seconds": 60,
    "spread_lookback_minutes": 60,
    "of_entry_min": 0,
    "of_entry_min_norm": 0.1,
    "of_breakout_min": 0,
    "of_breakout_min_norm": 0.1,
    "of_fail_min": 0,
    "of_fail_min_norm": -0.1,
    "accept_outside_k": 3,
    "risk_pct": 0.02,
    "max_leverage": 10,
    "margin_mode": "cross",
    "tp1_pct": 0.30,
    "tp2_pct": 0.70,
    "move_stop_to_breakeven_after_tp1": True,
    "max_hold_minutes": 60,
    "extend_if_profitable": True,
    "cooldown_minutes": 3,
    "stop_buffer_ticks": 2,
    "fill_on_next_quote": True,
    "slippage_ticks_entry": 1,
    "slippage_ticks_exit": 1,
    "taker_fee_bps": 5,
    "maker_fee_bps": -1,
    "limit_order_timeout_minutes": 1,
    "use_limit_for_entry": True,
    "use_market_for_exit": True,
    "funding_rate_8h_bps": 1,
    "backtest_workers": "auto",
    "enable_retest_mode": True,
    "enable_flip_on_signal": True,
    "state_snapshot_interval_minutes": 5,
    "log_features_every_minute": True,
    "require_manual_activation": True,
    "warmup_minutes": 240,
}


def test_default_yaml_has_every_spec_key_with_spec_default() -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    for key, value in SPEC_DEFAULTS.items():
        assert key in raw, f"spec key {key} missing from default.yaml"
        assert raw[key] == value, f"{key}: {raw[key]!r} != spec {value!r}"
    s = load_settings()
    for key, value in SPEC_DEFAULTS.items():
        assert getattr(s, key) == value


def test_instrument_facts_present() -> None:
    s = load_settings()
    assert (s.tick_size, s.qty_step, s.min_qty) == (0.10, 0.001, 0.001)


def test_every_yaml_key_is_a_model_field_and_back() -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert set(raw) == set(Settings.model_fields)


def _write(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    raw.update(changes)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    p = _write(tmp_path, alpha_bins=0.3)
    with pytest.raises(ConfigError) as ei:
        load_settings(p)
    assert (
        "alpha_bins" in str(ei.value) and str(p) in str(ei.value) and "unknown key" in str(ei.value)
    )


def test_wrong_type_names_key_and_file(tmp_path: Path) -> None:
    p = _write(tmp_path, accept_outside_k="three")
    with pytest.raises(ConfigError) as ei:
        load_settings(p)
    assert "accept_outside_k" in str(ei.value) and str(p) in str(ei.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("va_fraction", 1.5), ("risk_pct", -0.1), ("min_va_bins", 0), ("tick_size", 0)],
)
def test_out_of_range_rejected(tmp_path: Path, key: str, value: object) -> None:
    p = _write(tmp_path, **{key: value})
    with pytest.raises(ConfigError, match=key):
        load_settings(p)


def test_set_override_typed_and_validated() -> None:
    s = load_settings(overrides=["alpha_bin=0.4", "use_qimb=false", "backtest_workers=3"])
    assert s.alpha_bin == 0.4 and s.use_qimb is False and s.backtest_workers == 3
    with pytest.raises(ConfigError, match="va_fraction"):
        load_settings(overrides=["va_fraction=2"])
    with pytest.raises(ConfigError, match="nonexistent"):
        load_settings(overrides=["nonexistent=1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("alpha_bin")


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("alpha_bin: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def test_stage_tags_split_feature_and_strategy_keys() -> None:
    assert Settings.stage_of("alpha_bin") == "stage2"
    assert Settings.stage_of("max_quote_staleness_ms") == "stage1"
    assert Settings.stage_of("accept_outside_k") == "strategy"
    feature_keys = set(Settings.keys_of_stage("stage1", "stage2"))
    assert {"alpha_bin", "va_fraction", "min_va_bins", "use_tick_rule_fallback"} <= feature_keys
    assert "risk_pct" not in feature_keys


def test_secrets_env_overrides_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("BYBIT_API_KEY=fromfile\nDATABASE_DIR=/tmp/x\n")
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("DATABASE_DIR", raising=False)
    s = load_secrets(env)
    assert s.bybit_api_key == "fromfile" and str(s.database_dir) == "/tmp/x"
    monkeypatch.setenv("BYBIT_API_KEY", "fromenv")
    assert load_secrets(env).bybit_api_key == "fromenv"


def test_kernel_keys_match_the_config_stage_tags() -> None:
    """The kernel's parameter keys are declared once, in Rust; every one is a config key of
    the strategy stage (the tick size belongs to stage 1 and is shared), and every
    strategy key is read by the kernel or by the named Python consumer."""
    from at_core import _core
    from at_core.config import Settings

    rust = set(_core.strategy_param_keys())
    assert rust, "no keys exported"
    assert rust <= set(Settings.model_fields), rust - set(Settings.model_fields)
    for k in rust:
        assert Settings.stage_of(k) == ("stage1" if k == "tick_size" else "strategy"), k
    read_elsewhere = {
        "funding_source": "selects the funding input (backtest table, streaming replay)",
        "tp2_pct": "validated: must be 1 - tp1_pct (the kernel sends the rest to TP2)",
        "fill_on_next_quote": "validated: only true (the one fill model)",
    }
    strategy = set(Settings.keys_of_stage("strategy"))
    assert strategy - rust == set(read_elsewhere), strategy - rust


def test_settings_without_effect_are_refused() -> None:
    from at_core.config import load_settings
    from at_core.errors import ConfigError

    with pytest.raises(ConfigError, match="tp2_pct"):
        load_settings(overrides={"tp1_pct": 0.4})
    load_settings(overrides={"tp1_pct": 0.4, "tp2_pct": 0.6})
    with pytest.raises(ConfigError, match="fill_on_next_quote"):
        load_settings(overrides={"fill_on_next_quote": False})


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    """Issue 10 §5: plain YAML keeps the last of two equal keys without a word."""
    from at_core.config import load_settings
    from at_core.errors import ConfigError

    cfg = tmp_path / "c.yaml"
    cfg.write_text("risk_pct: 0.01\nmax_leverage: 5\nrisk_pct: 0.05\n")
    with pytest.raises(ConfigError, match=r"risk_pct.*given twice \(lines 1 and 3\)"):
        load_settings(cfg)


def test_implausible_fees_and_unsupported_margin_are_refused() -> None:
    """Issue 10 §5: a taker fee of -50 bps made +976,546 USDT in 2 days; isolated margin
    was accepted and ignored (SPEC §7.2: always cross)."""
    from at_core.config import load_settings
    from at_core.errors import ConfigError

    with pytest.raises(ConfigError, match="taker_fee_bps"):
        load_settings(overrides={"taker_fee_bps": -50})
    with pytest.raises(ConfigError, match="maker_fee_bps"):
        load_settings(overrides={"maker_fee_bps": -8, "taker_fee_bps": 5})
    with pytest.raises(ConfigError, match="margin_mode"):
        load_settings(overrides={"margin_mode": "isolated"})
    load_settings(overrides={"maker_fee_bps": -2.5, "taker_fee_bps": 5.5})


def test_a_grid_file_given_as_the_base_config_says_so(tmp_path: Path) -> None:
    """Issue 10 §7: `tune/grid.py --config` is the grid file, `grid run --config` the base
    config; mixing them up names both, not "unknown key params"."""
    from at_core.config import REPO_ROOT

    with pytest.raises(ConfigError, match=r"this is a grid file .* grid run --grid FILE"):
        load_settings(REPO_ROOT / "configs" / "grid" / "demo.yaml")
