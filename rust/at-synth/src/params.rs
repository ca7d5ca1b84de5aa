//! Parameters of the synthetic market, calibrated against the real Binance USD-M BTCUSDT
//! windows in `shared/data` (see `shared/data/README.md` and the integration test
//! `tests/integration/test_synthetic_vs_real.py`, which checks the resulting statistics).
//!
//! Units: prices in ticks, sizes in lots (`1 / lots_per_unit` BTC), time in milliseconds,
//! rates per second unless the name says otherwise.

use at_types::AtError;

/// Largest accepted `SynthParams::activity` (20x the calibrated market: ~130 M events/day).
pub const MAX_ACTIVITY: f64 = 20.0;

#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Price grid: ticks per 1 USD (10 -> tick 0.10, Bybit/Binance BTCUSDT).
    pub ticks_per_unit: i64,
    /// Size grid: lots per 1 BTC (1000 -> qty step 0.001).
    pub lots_per_unit: i64,
    /// Starting price (USD) and the level the long-run drift is pulled back to.
    pub start_price: f64,

    // ---- activity (drives every rate) -------------------------------------------------
    /// Scale of the whole market's event flow: multiplies the aggressive-order and the
    /// background passive-quote rates (and so the follow-ups, which come per order), so
    /// `activity = k` gives about `k` times the trades and quotes with the same
    /// microstructure per event (prints per order, quotes per trade, spreads, sizes). The
    /// price process is not scaled: volatility per minute and the AMT regimes are those of
    /// activity 1. 1.0 (the calibrated market) leaves the output bit for bit unchanged.
    /// Must be finite and in (0, 20].
    pub activity: f64,
    /// Mean aggressive-order rate at activity 1 (orders/s).
    pub order_rate: f64,
    /// Hawkes branching ratio of order arrivals (share of orders triggered by orders).
    pub hawkes_branching: f64,
    /// Decay time of the Hawkes excitation (ms).
    pub hawkes_decay_ms: f64,
    /// Background passive quote updates at activity 1 (updates/s).
    pub passive_rate: f64,
    /// Mean number of passive follow-up updates that each aggressive order triggers.
    pub followups_per_order: f64,
    /// Mean delay of those follow-ups (ms).
    pub followup_delay_ms: f64,
    /// Log-activity Ornstein-Uhlenbeck: time constant (minutes) and stationary std.
    pub activity_tau_min: f64,
    pub activity_std: f64,
    /// Weekend activity multiplier.
    pub weekend_activity: f64,

    // ---- price process --------------------------------------------------------------
    /// Relative volatility of the latent price per minute at activity 1 (0.0004 = 0.04 %).
    pub vol_per_min: f64,
    /// Exponent of activity in the volatility: sigma ~ activity^vol_activity_exp.
    pub vol_activity_exp: f64,
    /// Balance: stationary relative std of price around the value centre, drawn uniformly.
    pub balance_std_min: f64,
    pub balance_std_max: f64,
    /// Balance duration: minimum plus an exponential part (minutes).
    pub balance_min_minutes: f64,
    pub balance_extra_mean_minutes: f64,
    /// Probability that a breakout attempt is accepted (else it fails and returns).
    pub accept_prob: f64,

    // ---- book ---------------------------------------------------------------------------
    /// Aggressive order size: log-normal median (BTC) and log-std.
    pub order_size_median: f64,
    pub order_size_sigma: f64,
    /// Resting order sizes (the counterparties, one print each): median (BTC), log-std.
    pub resting_size_median: f64,
    pub resting_size_sigma: f64,
    /// Touch size the passive updates revert to (BTC), and a new level's size (BTC).
    pub touch_size_median: f64,
    pub new_level_size_median: f64,
    /// Size of levels behind the touch that sweeps reach (BTC) and the chance one is empty.
    pub deep_level_size_median: f64,
    pub deep_level_gap_prob: f64,
    /// What a sweep finds left of the touch after the simultaneous cancellations (BTC).
    pub sweep_touch_median: f64,
    /// Mean number of non-empty levels behind the touch that a sweep trades through.
    pub sweep_extra_levels: f64,
    /// Mean number of resting orders making up a level away from the touch (>= 1).
    pub orders_per_level: f64,
    /// Repricing threshold as a multiple of the one-second latent move (ticks).
    pub jump_threshold_mult: f64,
    /// Probability that a passive event reprices once the latent price has moved past the
    /// threshold; probability that an aggressive order in the pressure direction sweeps.
    pub passive_reprice_prob: f64,
    pub sweep_prob: f64,
    /// Probability that a repricing moves both sides in one update (else the spread
    /// widens and a refill follows a few ms later).
    pub atomic_reprice_prob: f64,
    /// Mean delay of a refill after the spread widened (ms).
    pub refill_delay_ms: f64,
    /// Per passive update: probability of a flicker (one side withdraws, then refills).
    pub flicker_prob: f64,
    /// Probability that the quote update caused by an order is published in its ms.
    pub caused_quote_prob: f64,
}

impl Default for SynthParams {
    fn default() -> Self {
        Self {
            ticks_per_unit: 10,
            lots_per_unit: 1000,
            start_price: 42_000.0,
            activity: 1.0,
            order_rate: 4.5,
            hawkes_branching: 0.6,
            hawkes_decay_ms: 40.0,
            passive_rate: 50.0,
            followups_per_order: 2.0,
            followup_delay_ms: 25.0,
            activity_tau_min: 45.0,
            activity_std: 0.4,
            weekend_activity: 0.7,
            vol_per_min: 0.0004,
            vol_activity_exp: 0.5,
            balance_std_min: 0.0012,
            balance_std_max: 0.0028,
            balance_min_minutes: 100.0,
            balance_extra_mean_minutes: 200.0,
            accept_prob: 0.55,
            order_size_median: 0.016,
            order_size_sigma: 2.3,
            resting_size_median: 0.005,
            resting_size_sigma: 2.0,
            touch_size_median: 5.0,
            new_level_size_median: 2.0,
            deep_level_size_median: 0.2,
            deep_level_gap_prob: 0.5,
            sweep_touch_median: 0.15,
            sweep_extra_levels: 1.0,
            orders_per_level: 2.0,
            jump_threshold_mult: 0.6,
            passive_reprice_prob: 0.35,
            sweep_prob: 0.1,
            atomic_reprice_prob: 0.8,
            refill_delay_ms: 10.0,
            flicker_prob: 0.004,
            caused_quote_prob: 0.92,
        }
    }
}

impl SynthParams {
    /// Reject values outside their domain, naming the key.
    pub fn validate(&self) -> Result<(), AtError> {
        let bad = |key: &str, message: String| {
            Err(AtError::InvalidConfig {
                key: key.into(),
                message,
            })
        };
        if self.ticks_per_unit < 1 {
            return bad(
                "ticks_per_unit",
                format!("must be >= 1, got {}", self.ticks_per_unit),
            );
        }
        if self.lots_per_unit < 1 {
            return bad(
                "lots_per_unit",
                format!("must be >= 1, got {}", self.lots_per_unit),
            );
        }
        if !(self.start_price.is_finite()
            && self.start_price * self.ticks_per_unit as f64 >= 1000.0)
        {
            return bad(
                "start_price",
                format!(
                    "must be finite and at least 1000 ticks, got {}",
                    self.start_price
                ),
            );
        }
        if !(self.activity.is_finite() && self.activity > 0.0 && self.activity <= MAX_ACTIVITY) {
            return bad(
                "activity",
                format!(
                    "must be a finite number in (0, {MAX_ACTIVITY}], got {}",
                    self.activity
                ),
            );
        }
        if !(0.0..0.95).contains(&self.hawkes_branching) {
            return bad(
                "hawkes_branching",
                format!("must be in [0, 0.95), got {}", self.hawkes_branching),
            );
        }
        let positive = [
            ("order_rate", self.order_rate),
            ("hawkes_decay_ms", self.hawkes_decay_ms),
            ("passive_rate", self.passive_rate),
            ("followup_delay_ms", self.followup_delay_ms),
            ("activity_tau_min", self.activity_tau_min),
            ("vol_per_min", self.vol_per_min),
            ("balance_std_min", self.balance_std_min),
            ("balance_min_minutes", self.balance_min_minutes),
            ("order_size_median", self.order_size_median),
            ("resting_size_median", self.resting_size_median),
            ("touch_size_median", self.touch_size_median),
            ("new_level_size_median", self.new_level_size_median),
            ("deep_level_size_median", self.deep_level_size_median),
            ("sweep_touch_median", self.sweep_touch_median),
            ("jump_threshold_mult", self.jump_threshold_mult),
            ("refill_delay_ms", self.refill_delay_ms),
            ("weekend_activity", self.weekend_activity),
        ];
        for (k, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, format!("must be a positive finite number, got {v}"));
            }
        }
        if self.balance_std_max < self.balance_std_min {
            return bad("balance_std_max", "must be >= balance_std_min".into());
        }
        let probs = [
            ("accept_prob", self.accept_prob),
            ("deep_level_gap_prob", self.deep_level_gap_prob),
            ("passive_reprice_prob", self.passive_reprice_prob),
            ("sweep_prob", self.sweep_prob),
            ("atomic_reprice_prob", self.atomic_reprice_prob),
            ("flicker_prob", self.flicker_prob),
            ("caused_quote_prob", self.caused_quote_prob),
        ];
        for (k, v) in probs {
            if !(0.0..=1.0).contains(&v) {
                return bad(k, format!("must be in [0, 1], got {v}"));
            }
        }
        if !(self.orders_per_level >= 1.0 && self.orders_per_level < 100.0) {
            return bad(
                "orders_per_level",
                format!("must be in [1, 100), got {}", self.orders_per_level),
            );
        }
        if self.deep_level_gap_prob >= 0.95 {
            return bad("deep_level_gap_prob", "must be < 0.95".into());
        }
        Ok(())
    }
}
