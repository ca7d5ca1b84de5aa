//! Backtest metrics (SPEC §12.6), accumulated on the fly so the batch runner stores nothing
//! per minute.
//!
//! Definitions:
//! - a trade is one position from entry to flat (a flip is two trades; partial exits are
//!   part of their trade); gross P&L is price P&L, net = gross − fees + funding;
//! - win = net P&L > 0; average win / loss over winning / losing trades (net);
//! - max drawdown on mark-to-market equity at minute closes (mid), absolute and as a share
//!   of the running peak;
//! - Sharpe: daily (UTC) returns of mark-to-market equity, `mean / stdev(ddof=1) × √365`
//!   (crypto trades every day); **n/a (NaN)** with fewer than [`SHARPE_MIN_DAYS`] daily
//!   returns or zero variance: an annualised figure from 2 or 3 days (−1,135 on 2 days was
//!   printed before) is noise that reads like a result;
//! - with no trade, win rate, P&L per trade and profit factor are n/a (NaN), not 0; with no
//!   winning (losing) trade the average win (loss) is n/a; profit factor is +inf with wins
//!   and no loss;
//! - spread paid: quoted spread (ask − bid) of the quote every taker fill executed against
//!   (entries and market exits; resting-limit fills pay none): mean, p50, p90, max;
//! - ambiguous fraction: over minutes with trades, mean, max and the share above
//!   `ambiguous_trade_frac_max`; and the mean at entry decisions;
//! - coverage: `n_days` = UTC days with at least one minute of data (what the Sharpe's
//!   daily returns are taken over), `n_gaps` / `gap_minutes` = data gaps met and the
//!   minutes missing in them (a run spanning 471 calendar days may cover 2).

use at_strategy::{event, Bar, Decision};

/// Fewest daily returns an annualised Sharpe is reported from (else n/a). Twenty trading
/// days: below that the standard error of an annualised Sharpe is several units.
pub const SHARPE_MIN_DAYS: usize = 20;

use crate::engine::TradeRecord;

/// The metrics of one backtest.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    pub n_minutes: f64,
    pub n_trades: f64,
    pub n_wins: f64,
    pub n_losses: f64,
    pub win_rate: f64,
    pub gross_pnl: f64,
    pub fees: f64,
    pub funding: f64,
    pub net_pnl: f64,
    pub pnl_per_trade: f64,
    pub avg_win: f64,
    pub avg_loss: f64,
    pub profit_factor: f64,
    pub max_drawdown: f64,
    pub max_drawdown_pct: f64,
    pub sharpe: f64,
    pub final_equity: f64,
    pub return_pct: f64,
    pub slippage_cost: f64,
    pub spread_paid_mean: f64,
    pub spread_paid_p50: f64,
    pub spread_paid_p90: f64,
    pub spread_paid_max: f64,
    pub n_taker_fills: f64,
    pub ambiguous_frac_mean: f64,
    pub ambiguous_frac_max: f64,
    pub high_ambiguity_share: f64,
    pub ambiguous_frac_entry_mean: f64,
    pub n_entries: f64,
    pub n_limit_fills: f64,
    pub n_flips: f64,
    pub n_leverage_cap_hits: f64,
    pub n_kill_switch: f64,
    pub exposure: f64,
    pub lookahead_violations: f64,
    pub n_days: f64,
    pub n_gaps: f64,
    pub gap_minutes: f64,
}

impl Metrics {
    /// Column names, in the order of `values()`.
    pub const NAMES: [&'static str; 38] = [
        "n_minutes",
        "n_trades",
        "n_wins",
        "n_losses",
        "win_rate",
        "gross_pnl",
        "fees",
        "funding",
        "net_pnl",
        "pnl_per_trade",
        "avg_win",
        "avg_loss",
        "profit_factor",
        "max_drawdown",
        "max_drawdown_pct",
        "sharpe",
        "final_equity",
        "return_pct",
        "slippage_cost",
        "spread_paid_mean",
        "spread_paid_p50",
        "spread_paid_p90",
        "spread_paid_max",
        "n_taker_fills",
        "ambiguous_frac_mean",
        "ambiguous_frac_max",
        "high_ambiguity_share",
        "ambiguous_frac_entry_mean",
        "n_entries",
        "n_limit_fills",
        "n_flips",
        "n_leverage_cap_hits",
        "n_kill_switch",
        "exposure",
        "lookahead_violations",
        "n_days",
        "n_gaps",
        "gap_minutes",
    ];

    pub fn values(&self) -> [f64; 38] {
        [
            self.n_minutes,
            self.n_trades,
            self.n_wins,
            self.n_losses,
            self.win_rate,
            self.gross_pnl,
            self.fees,
            self.funding,
            self.net_pnl,
            self.pnl_per_trade,
            self.avg_win,
            self.avg_loss,
            self.profit_factor,
            self.max_drawdown,
            self.max_drawdown_pct,
            self.sharpe,
            self.final_equity,
            self.return_pct,
            self.slippage_cost,
            self.spread_paid_mean,
            self.spread_paid_p50,
            self.spread_paid_p90,
            self.spread_paid_max,
            self.n_taker_fills,
            self.ambiguous_frac_mean,
            self.ambiguous_frac_max,
            self.high_ambiguity_share,
            self.ambiguous_frac_entry_mean,
            self.n_entries,
            self.n_limit_fills,
            self.n_flips,
            self.n_leverage_cap_hits,
            self.n_kill_switch,
            self.exposure,
            self.lookahead_violations,
            self.n_days,
            self.n_gaps,
            self.gap_minutes,
        ]
    }
}

/// Running accumulator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MetricsAcc {
    initial: f64,
    amb_max_cfg: f64,
    m: Metrics,
    sum_win: f64,
    sum_loss: f64,
    peak: f64,
    day: i64,
    day_end: i64,
    day_end_equity: f64,
    prev_day_equity: f64,
    daily: Vec<f64>,
    spreads: Vec<f64>,
    amb_sum: f64,
    amb_n: f64,
    amb_high: f64,
    amb_entry_sum: f64,
    in_pos_minutes: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl MetricsAcc {
    pub fn new(initial: f64) -> Self {
        Self {
            initial,
            amb_max_cfg: 0.35,
            m: Metrics {
                ambiguous_frac_max: 0.0,
                ..Metrics::default()
            },
            sum_win: 0.0,
            sum_loss: 0.0,
            peak: initial,
            day: i64::MIN,
            day_end: i64::MIN,
            day_end_equity: initial,
            prev_day_equity: initial,
            daily: Vec::new(),
            spreads: Vec::new(),
            amb_sum: 0.0,
            amb_n: 0.0,
            amb_high: 0.0,
            amb_entry_sum: 0.0,
            in_pos_minutes: 0.0,
        }
    }

    pub fn set_ambiguous_threshold(&mut self, v: f64) {
        self.amb_max_cfg = v;
    }

    /// A fill at `ts` for a decision at `decision_ts`: must be strictly later (§12.4).
    #[inline]
    pub fn fill(&mut self, ts: i64, decision_ts: i64) {
        if ts <= decision_ts {
            self.m.lookahead_violations += 1.0;
        }
    }

    #[inline]
    pub fn taker_spread(&mut self, s: f64) {
        if s.is_finite() {
            self.spreads.push(s);
        }
    }

    #[inline]
    pub fn entry(&mut self, maker: bool, _spread: f64, ambiguous: f64) {
        self.m.n_entries += 1.0;
        if maker {
            self.m.n_limit_fills += 1.0;
        }
        if ambiguous.is_finite() {
            self.amb_entry_sum += ambiguous;
        }
    }

    #[inline]
    pub fn flip(&mut self) {
        self.m.n_flips += 1.0;
    }

    #[inline]
    pub fn funding(&mut self, amount: f64) {
        self.m.funding += amount;
    }

    pub fn trade(&mut self, r: &TradeRecord) {
        let m = &mut self.m;
        m.n_trades += 1.0;
        m.gross_pnl += r.gross_pnl;
        m.fees += r.fees;
        m.slippage_cost += r.slippage_cost;
        if r.net_pnl > 0.0 {
            m.n_wins += 1.0;
            self.sum_win += r.net_pnl;
        } else {
            m.n_losses += 1.0;
            self.sum_loss += r.net_pnl;
        }
        if r.leverage_cap_hit {
            m.n_leverage_cap_hits += 1.0;
        }
    }

    #[inline]
    pub fn minute<B: Bar>(&mut self, x: &B, d: &Decision, in_position: bool) {
        self.minute_core(x.ts_min(), d, in_position);
        self.ambiguity(x.has_trades(), x.ambiguous_frac());
    }

    /// The ambiguity statistics of one minute (`has`: it had trades; `amb`: its ambiguous
    /// fraction), in row order.
    #[inline]
    pub fn ambiguity(&mut self, has: bool, amb: f64) {
        if has && amb.is_finite() {
            self.amb_sum += amb;
            self.amb_n += 1.0;
            if amb > self.m.ambiguous_frac_max {
                self.m.ambiguous_frac_max = amb;
            }
            if amb > self.amb_max_cfg {
                self.amb_high += 1.0;
            }
        }
    }

    /// `minute` without the ambiguity statistics, which depend on the table only: the
    /// prepared path adds them once with `set_ambiguity` (same sums, same order).
    #[inline]
    pub fn minute_core(&mut self, ts_min: i64, d: &Decision, in_position: bool) {
        self.m.n_minutes += 1.0;
        let eq = d.equity;
        if ts_min >= self.day_end || ts_min < self.day_end.saturating_sub(86_400_000) {
            let day = ts_min.div_euclid(86_400_000);
            self.day_end = (day + 1) * 86_400_000;
            if self.day != i64::MIN {
                self.daily
                    .push(self.day_end_equity / self.prev_day_equity - 1.0);
                self.prev_day_equity = self.day_end_equity;
            }
            self.day = day;
        }
        self.day_end_equity = eq;
        if eq > self.peak {
            self.peak = eq;
        }
        let dd = self.peak - eq;
        if dd > self.m.max_drawdown {
            self.m.max_drawdown = dd;
        }
        if dd > self.m.max_drawdown_pct * self.peak && self.peak > 0.0 {
            self.m.max_drawdown_pct = dd / self.peak;
        }
        if d.events & event::KILL_SWITCH_ON != 0 {
            self.m.n_kill_switch += 1.0;
        }
        if in_position {
            self.in_pos_minutes += 1.0;
        }
    }

    /// A data gap of `missing` minutes.
    pub fn gap(&mut self, missing: i64) {
        self.m.n_gaps += 1.0;
        self.m.gap_minutes += missing as f64;
    }

    /// `count` more minutes exactly like the previous one (same day, same equity, flat,
    /// no event): only the minute count moves.
    #[inline]
    pub fn repeat_minutes(&mut self, count: usize) {
        self.m.n_minutes += count as f64;
    }

    /// The ambiguity statistics of the whole table (see `Prepared`), replacing the
    /// per-minute accumulation of `minute`.
    pub fn set_ambiguity(&mut self, sum: f64, n: f64, max: f64, high: f64) {
        self.amb_sum = sum;
        self.amb_n = n;
        self.m.ambiguous_frac_max = max;
        self.amb_high = high;
    }

    pub fn finish(self, final_equity: f64) -> Metrics {
        self.finish_with_daily(final_equity).0
    }

    /// The metrics and the daily returns the Sharpe was taken over: one simple return of
    /// mark-to-market equity per UTC day that has minutes in the table, in time order (the
    /// first relative to the initial equity, the last to the final equity). The research
    /// statistics (deflated Sharpe, PBO) are computed from these, never from the metrics.
    pub fn finish_with_daily(mut self, final_equity: f64) -> (Metrics, Vec<f64>) {
        if self.day != i64::MIN {
            self.daily.push(final_equity / self.prev_day_equity - 1.0);
        }
        let m = &mut self.m;
        m.n_days = self.daily.len() as f64;
        m.net_pnl = m.gross_pnl - m.fees + m.funding;
        m.final_equity = final_equity;
        m.return_pct = final_equity / self.initial - 1.0;
        let na = f64::NAN;
        if m.n_trades > 0.0 {
            m.win_rate = m.n_wins / m.n_trades;
            m.pnl_per_trade = m.net_pnl / m.n_trades;
        } else {
            (m.win_rate, m.pnl_per_trade) = (na, na);
        }
        m.avg_win = if m.n_wins > 0.0 {
            self.sum_win / m.n_wins
        } else {
            na
        };
        m.avg_loss = if m.n_losses > 0.0 {
            self.sum_loss / m.n_losses
        } else {
            na
        };
        m.profit_factor = if m.n_trades == 0.0 {
            na
        } else if self.sum_loss < 0.0 {
            self.sum_win / -self.sum_loss
        } else if self.sum_win > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let n = self.daily.len();
        m.sharpe = na;
        if n >= SHARPE_MIN_DAYS.max(2) {
            let mean = self.daily.iter().sum::<f64>() / n as f64;
            let var = self
                .daily
                .iter()
                .map(|r| (r - mean) * (r - mean))
                .sum::<f64>()
                / (n - 1) as f64;
            if var > 0.0 {
                m.sharpe = mean / var.sqrt() * 365f64.sqrt();
            }
        }
        self.spreads.sort_by(f64::total_cmp);
        m.n_taker_fills = self.spreads.len() as f64;
        if !self.spreads.is_empty() {
            m.spread_paid_mean = self.spreads.iter().sum::<f64>() / self.spreads.len() as f64;
            m.spread_paid_p50 = quantile(&self.spreads, 0.5);
            m.spread_paid_p90 = quantile(&self.spreads, 0.9);
            m.spread_paid_max = *self.spreads.last().expect("non-empty");
        }
        if self.amb_n > 0.0 {
            m.ambiguous_frac_mean = self.amb_sum / self.amb_n;
            m.high_ambiguity_share = self.amb_high / self.amb_n;
        }
        if m.n_entries > 0.0 {
            m.ambiguous_frac_entry_mean = self.amb_entry_sum / m.n_entries;
        }
        if m.n_minutes > 0.0 {
            m.exposure = self.in_pos_minutes / m.n_minutes;
        }
        (self.m, self.daily)
    }
}
