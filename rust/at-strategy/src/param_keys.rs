//! The config keys of [`Params`], declared once: the bindings parse a dict of config keys
//! through [`Params::set`], and Python derives its list of kernel keys from
//! [`PARAM_KEYS`]. A key that is not listed here is an error, never ignored.
//!
//! Pitfall: three keys differ from the field they set (`qimb_signal_source` →
//! `qimb_source`), and choices are strings in the config but enums here; both are spelled
//! out once, below.

use at_types::AtError;

use crate::params::{LimitPriceMode, OfThresholdMode, Params, QimbSource, StopFillMode};

/// How a parameter's value is written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    F64,
    U32,
    Bool,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
}

/// A parameter value as given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamValue<'a> {
    F64(f64),
    U32(u32),
    Bool(bool),
    Str(&'a str),
}

macro_rules! param_keys {
    (
        f64: $($f:ident),*;
        u32: $($u:ident),*;
        bool: $($b:ident),*;
        choice: $($ckey:literal => $cfield:ident : $cty:ident { $($cname:literal => $cvar:ident),* }),* $(,)?
    ) => {
        /// Every config key the kernel and the fill model read, with how it is written.
        pub const PARAM_KEYS: &[(&str, ParamKind)] = &[
            $((stringify!($f), ParamKind::F64),)*
            $((stringify!($u), ParamKind::U32),)*
            $((stringify!($b), ParamKind::Bool),)*
            $(($ckey, ParamKind::Choice(&[$($cname),*])),)*
        ];

        impl Params {
            /// Set one parameter from its config key; the error names the key and what
            /// was expected (an unknown key is an error).
            pub fn set(&mut self, key: &str, v: ParamValue<'_>) -> Result<(), AtError> {
                let wrong = |want: &str| AtError::InvalidConfig {
                    key: key.into(),
                    message: format!("expected {want}, got {v:?}"),
                };
                match key {
                    $(stringify!($f) => match v {
                        ParamValue::F64(x) => self.$f = x,
                        ParamValue::U32(x) => self.$f = f64::from(x),
                        _ => return Err(wrong("a number")),
                    },)*
                    $(stringify!($u) => match v {
                        ParamValue::U32(x) => self.$u = x,
                        _ => return Err(wrong("a non-negative integer")),
                    },)*
                    $(stringify!($b) => match v {
                        ParamValue::Bool(x) => self.$b = x,
                        _ => return Err(wrong("true or false")),
                    },)*
                    $($ckey => match v {
                        $(ParamValue::Str($cname) => self.$cfield = $cty::$cvar,)*
                        _ => return Err(wrong(concat!("one of" $(, " ", $cname)*))),
                    },)*
                    _ => {
                        return Err(AtError::InvalidConfig {
                            key: key.into(),
                            message: "not a strategy or execution parameter".into(),
                        })
                    }
                }
                Ok(())
            }
        }
    };
}

param_keys! {
    f64: tick_size, qty_step, min_qty, min_notional, crossing_spread_mult,
        pullback_spread_mult, ambiguous_trade_frac_max, qimb_entry_min, qimb_breakout_min,
        qimb_fail_min, of_entry_min, of_entry_min_norm, of_breakout_min, of_breakout_min_norm,
        of_fail_min, of_fail_min_norm, risk_pct, max_leverage, tp1_pct, max_daily_loss_pct,
        taker_fee_bps, maker_fee_bps, slippage_ticks_entry, slippage_ticks_exit,
        funding_rate_8h_bps, initial_equity;
    u32: accept_outside_k, max_hold_minutes, cooldown_minutes, stop_buffer_ticks,
        limit_order_timeout_minutes;
    bool: use_qimb, move_stop_to_breakeven_after_tp1, extend_if_profitable,
        enable_retest_mode, enable_flip_on_signal, use_limit_for_entry, use_market_for_exit;
    choice:
        "of_threshold_mode" => of_threshold_mode: OfThresholdMode {
            "raw" => Raw, "norm" => Norm, "either" => Either, "both" => Both
        },
        "limit_price_mode" => limit_price_mode: LimitPriceMode {
            "close" => Close, "boundary" => Boundary
        },
        "qimb_signal_source" => qimb_source: QimbSource { "close" => Close, "ema" => Ema },
        "stop_fill_mode" => stop_fill_mode: StopFillMode {
            "worst_case" => WorstCase, "tick_path" => TickPath
        },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_sets_its_field_and_nothing_else() {
        for (key, kind) in PARAM_KEYS {
            let mut p = Params::default();
            let v = match kind {
                ParamKind::F64 => ParamValue::F64(12_345.5),
                ParamKind::U32 => ParamValue::U32(12_345),
                ParamKind::Bool => ParamValue::Bool(!matches!(
                    serde_json::to_value(Params::default()).unwrap()[key],
                    serde_json::Value::Bool(true)
                )),
                ParamKind::Choice(names) => {
                    // the last choice is never the default here
                    ParamValue::Str(names[names.len() - 1])
                }
            };
            p.set(key, v).unwrap();
            let (a, b) = (
                serde_json::to_value(Params::default()).unwrap(),
                serde_json::to_value(p).unwrap(),
            );
            let changed: Vec<_> = a
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, v)| b[k.as_str()] != **v)
                .map(|(k, _)| k.clone())
                .collect();
            assert_eq!(changed.len(), 1, "{key}: {changed:?}");
        }
        // every field has a key
        let n = serde_json::to_value(Params::default())
            .unwrap()
            .as_object()
            .unwrap()
            .len();
        assert_eq!(PARAM_KEYS.len(), n);
    }

    #[test]
    fn unknown_keys_and_wrong_values_are_named() {
        let mut p = Params::default();
        let e = p.set("spread_avg", ParamValue::F64(1.0)).unwrap_err();
        assert!(e.to_string().contains("spread_avg"), "{e}");
        let e = p
            .set("stop_fill_mode", ParamValue::Str("best"))
            .unwrap_err();
        assert!(e.to_string().contains("worst_case tick_path"), "{e}");
        let e = p
            .set("cooldown_minutes", ParamValue::Bool(true))
            .unwrap_err();
        assert!(e.to_string().contains("cooldown_minutes"), "{e}");
    }
}
