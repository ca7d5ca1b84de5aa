//! Stage 2: minute summaries → feature rows (SPEC §5.2–§5.6), from summaries only.
//!
//! Bin width (SPEC §5.4), decisions where the spec is silent:
//! * `bin_width_raw = alpha_bin * mid_close * sigma_240`, rounded to the nearest multiple
//!   of the base bin (`base_bin_ticks`, 1 tick by default; round half away from zero), then
//!   clamped to `[base bin, bin_width_max_ticks]` (the max rounded down to a multiple of the
//!   base bin, never below one base bin). Without a mid or a sigma the width is the minimum.
//! * **Rebucketing:** the candidate width is computed every minute; it is *applied* when no
//!   width was applied yet, when `|new - old| / old >= rebucket_change_pct`, or when
//!   `t % rebucket_interval_minutes == 0` where **t is the UTC minute number**
//!   (`ts_min / 60000`), i.e. at :00, :15, :30, :45 with the default. Counting wall-clock
//!   minutes, not minutes since the run started, keeps the result independent of where a
//!   computation starts (a backfill and a live run agree).
//! * `bin_width` in the output is the width actually used for that minute's profile.
//! * The profile is rebuilt from the base-resolution window on every applied change, which
//!   is the same as a rebuild from raw trades (SPEC §5.4 rebuild method).
//!
//! Boundary crossing input (SPEC §6.3): `vah_trade_dist` / `val_trade_dist` are the distances
//! from this minute's VAH / VAL to the nearest price the minute traded at, read from the
//! minute's base-resolution histogram by binary search (see [`nearest_trade_dist_ticks`]).
//! With `base_bin_ticks = 1` the bins are the traded prices and the distance is exact; with
//! `base_bin_ticks = k > 1` a bin `[b, b + k - 1]` only says that some trade lies in it, so
//! the bin's farthest point from the level is used: an upper bound, so a crossing reported
//! with it is real (never claimed on a trade that may not exist). NaN when the minute had
//! no trades or the VA is not valid (the strategy never asks then).
//!
//! Warm-up (SPEC §16.1): `va_valid` requires, besides `min_va_bins`, that the
//! `max(warmup_minutes, rolling_window_minutes)`-minute window ending at the minute starts
//! at or after the warm-up start, i.e. `ts_min - warm_start >= (window - 1) * 60_000`.
//! The warm-up start is the first minute this instance saw (a first minute that began
//! mid-minute still counts as one). It lives here, in the engine, so that a live driver and
//! the backtester gate on the same rule.
//!
//! Data gaps: stage 1 emits a contiguous minute grid within a segment and no minute across
//! a gap (see `stage1`), so a minute that does not follow the previous one by exactly one
//! minute starts a new segment. Stage 2 then starts from scratch, exactly as a new engine
//! would: sigma, spread, BVC, the profile, the applied bin width and the warm-up count all
//! restart, and the value area is invalid until a fresh warm-up. The features of a segment
//! are therefore the same whether or not distant data was computed before it.

use serde::{Deserialize, Serialize};

use crate::minute::MinuteSummary;
use crate::profile::RollingProfile;
use crate::sigma::{Bvc, RollingSigma, RollingSpread};
use crate::{units_to_size, PriceScale, Stage2Config};
use at_types::{AtError, MINUTE_MS};

/// The per-minute stage-1 fields stage 2 reads (so it can run from stored arrays).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage2Input<'a> {
    pub ts_min: i64,
    /// Mid of L1 at close in ticks (may be x.5); NaN without a quote.
    pub mid_close_ticks: f64,
    /// Spread of L1 at close in ticks; negative = none.
    pub spread_close_ticks: Option<i64>,
    /// Last trade price in ticks (BVC only).
    pub close_ticks: Option<i64>,
    pub volume: f64,
    pub hist: &'a [(i64, i64)],
}

impl<'a> From<&'a MinuteSummary> for Stage2Input<'a> {
    fn from(s: &'a MinuteSummary) -> Self {
        Self {
            ts_min: s.ts_min,
            mid_close_ticks: s.mid_close_ticks().unwrap_or(f64::NAN),
            spread_close_ticks: s.spread_close_ticks(),
            close_ticks: s.close,
            volume: s.volume,
            hist: &s.hist,
        }
    }
}

/// One row of stage-2 output (prices as floats on the tick grid).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub ts_min: i64,
    pub mid_close: f64,
    pub sigma_240: f64,
    pub spread_avg: f64,
    /// Candidate width of this minute (ticks) and the width applied to the profile.
    pub bin_width_candidate_ticks: i64,
    pub bin_width_ticks: i64,
    pub bin_width: f64,
    pub rebucketed: bool,
    pub poc: f64,
    pub vah: f64,
    pub val: f64,
    pub va_coverage: f64,
    pub va_bin_count: i64,
    pub va_valid: bool,
    pub total_volume_4h: f64,
    /// SPEC §5.9 proxy, NaN unless `use_bvc_fallback`.
    pub bvc_net: f64,
    /// SPEC §6.3: distance (price) from `vah` / `val` to the minute's nearest traded price
    /// (an upper bound when `base_bin_ticks > 1`); NaN without trades or a valid VA.
    pub vah_trade_dist: f64,
    pub val_trade_dist: f64,
}

/// Distance in ticks from `level` to the nearest trade of a minute histogram `hist`
/// (sorted lower bin edges in ticks, bins of `bin_ticks` ticks, no zero bins), taking each
/// bin at its farthest point from `level` (`max(level - b, b + bin_ticks - 1 - level)`):
/// exact for one-tick bins, an upper bound otherwise. `None` for an empty histogram.
///
/// That per-bin distance is V-shaped in `b`, lowest at `b = level - (bin_ticks - 1) / 2`,
/// so the nearest bin is one of the two sorted edges around that point: one binary search,
/// no scan (stage 2 runs per grid point).
#[inline]
pub fn nearest_trade_dist_ticks(hist: &[(i64, i64)], level: i64, bin_ticks: i64) -> Option<i64> {
    let span = bin_ticks - 1;
    let far = |b: i64| (level - b).max(b + span - level);
    // first edge with 2b >= 2 level - span (at or past the vertex)
    let i = hist.partition_point(|&(b, _)| 2 * b < 2 * level - span);
    let right = hist.get(i).map(|&(b, _)| far(b));
    let left = i.checked_sub(1).map(|j| far(hist[j].0));
    match (left, right) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Streaming stage 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage2 {
    cfg: Stage2Config,
    scale: PriceScale,
    profile: RollingProfile,
    sigma: RollingSigma,
    spread: RollingSpread,
    bvc: Bvc,
    last_mid: Option<f64>,
    last_ts: Option<i64>,
    applied: Option<i64>,
    /// First minute of the history the rolling state holds (the warm-up counts from it).
    history_start: Option<i64>,
    /// Segments started after the first (data gaps met).
    gaps: u64,
}

impl Stage2 {
    pub fn new(cfg: Stage2Config) -> Result<Self, AtError> {
        cfg.validate()?;
        Ok(Self {
            scale: PriceScale::new(cfg.tick_size),
            profile: RollingProfile::new(cfg.rolling_window_minutes, cfg.base_bin_ticks),
            sigma: RollingSigma::new(cfg.rolling_window_minutes),
            spread: RollingSpread::new(cfg.spread_lookback_minutes),
            bvc: Bvc::new(cfg.bvc_lookback_minutes),
            last_mid: None,
            last_ts: None,
            applied: None,
            history_start: None,
            gaps: 0,
            cfg,
        })
    }

    /// Data gaps met so far (minutes that did not follow their predecessor).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Drop every rolling state, as a new engine (the first minute after a data gap).
    fn restart(&mut self) {
        let c = &self.cfg;
        self.profile = RollingProfile::new(c.rolling_window_minutes, c.base_bin_ticks);
        self.sigma = RollingSigma::new(c.rolling_window_minutes);
        self.spread = RollingSpread::new(c.spread_lookback_minutes);
        self.bvc = Bvc::new(c.bvc_lookback_minutes);
        self.last_mid = None;
        self.applied = None;
        self.history_start = None;
        self.gaps += 1;
    }

    pub fn config(&self) -> &Stage2Config {
        &self.cfg
    }

    pub fn profile(&self) -> &RollingProfile {
        &self.profile
    }

    /// Candidate bin width in ticks for a mid (ticks) and sigma.
    pub fn candidate_width(&self, mid_ticks: f64, sigma: f64) -> i64 {
        let base = self.cfg.base_bin_ticks;
        let max = ((self.cfg.bin_width_max_ticks / base) * base).max(base);
        let raw = self.cfg.alpha_bin * mid_ticks * sigma;
        if !raw.is_finite() {
            return base;
        }
        let k = (raw / base as f64).round();
        let w = if k < 1.0 {
            base
        } else if k * base as f64 >= max as f64 {
            max
        } else {
            k as i64 * base
        };
        w.clamp(base, max)
    }

    /// Feed the next minute (strictly increasing `ts_min`; a hole starts a new segment).
    pub fn push(&mut self, m: Stage2Input<'_>) -> Result<FeatureRow, AtError> {
        if let Some(t) = self.last_ts {
            if m.ts_min <= t {
                return Err(AtError::OutOfOrder {
                    location: format!("minute {}", m.ts_min),
                    message: format!("minutes must increase (previous {t})"),
                });
            }
        }
        if m.ts_min % MINUTE_MS != 0 {
            return Err(AtError::InvalidInput {
                location: format!("minute {}", m.ts_min),
                message: "not a minute boundary".into(),
            });
        }
        if self.last_ts.is_some_and(|t| m.ts_min - t > MINUTE_MS) {
            self.restart();
        }
        self.last_ts = Some(m.ts_min);
        let start = *self.history_start.get_or_insert(m.ts_min);
        let need = self.cfg.warmup_minutes.max(self.cfg.rolling_window_minutes);
        let warm = m.ts_min - start >= (need - 1).max(0) * MINUTE_MS;
        let mid = m.mid_close_ticks;
        let ret = match (mid.is_finite(), self.last_mid) {
            (true, Some(p)) => Some((mid / p).ln()),
            _ => None,
        };
        if mid.is_finite() {
            self.last_mid = Some(mid);
        }
        let sigma = self.sigma.push(m.ts_min, ret);
        let spread_avg = self.spread.push(m.ts_min, m.spread_close_ticks);

        let cand = self.candidate_width(mid, sigma);
        let t_minute = m.ts_min.div_euclid(MINUTE_MS);
        let apply = match self.applied {
            None => true,
            Some(old) => {
                ((cand - old).abs() as f64 / old as f64) >= self.cfg.rebucket_change_pct
                    || t_minute.rem_euclid(self.cfg.rebucket_interval_minutes) == 0
            }
        };
        // add the minute first, then (re)aggregate: the new width applies to this minute
        self.profile.push(m.ts_min, m.hist);
        if apply && self.applied != Some(cand) {
            self.profile.rebucket(cand);
        }
        if apply {
            self.applied = Some(cand);
        }
        let w = self.profile.width();
        let st = self.profile.stats(self.cfg.va_fraction);
        let va_valid = warm && st.va.is_some() && st.nonzero_bins >= self.cfg.min_va_bins;
        let trade_dist = |level: i64| {
            nearest_trade_dist_ticks(m.hist, level, self.cfg.base_bin_ticks)
                .map_or(f64::NAN, |d| self.scale.price(d))
        };
        let (vah_trade_dist, val_trade_dist) = match st.va {
            Some(va) if va_valid => (trade_dist(va.vah), trade_dist(va.val)),
            _ => (f64::NAN, f64::NAN),
        };
        let (poc, vah, val, cov) = match st.va {
            Some(va) => (
                self.scale.price(va.poc),
                self.scale.price(va.vah),
                self.scale.price(va.val),
                va.va_volume as f64 / va.total as f64,
            ),
            None => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        };
        let bvc_net = if self.cfg.use_bvc_fallback {
            self.bvc.push(
                m.ts_min,
                m.close_ticks.map(|c| self.scale.price(c)),
                m.volume,
            )
        } else {
            f64::NAN
        };
        Ok(FeatureRow {
            ts_min: m.ts_min,
            mid_close: self.scale.price_f(mid),
            sigma_240: sigma,
            spread_avg: self.scale.price_f(spread_avg),
            bin_width_candidate_ticks: cand,
            bin_width_ticks: w,
            bin_width: self.scale.price(w),
            rebucketed: apply,
            poc,
            vah,
            val,
            va_coverage: cov,
            va_bin_count: st.nonzero_bins,
            va_valid,
            total_volume_4h: units_to_size(st.total),
            bvc_net,
            vah_trade_dist,
            val_trade_dist,
        })
    }
}

/// Batch stage 2 = the streaming stage 2 in a loop.
pub fn run_stage2<'a, I>(cfg: &Stage2Config, minutes: I) -> Result<Vec<FeatureRow>, AtError>
where
    I: IntoIterator<Item = Stage2Input<'a>>,
{
    let mut s = Stage2::new(cfg.clone())?;
    minutes.into_iter().map(|m| s.push(m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy minute: 50 traded prices around 50,000.0 (500,000 ticks).
    fn busy(ts_min: i64, hist: &[(i64, i64)]) -> Stage2Input<'_> {
        Stage2Input {
            ts_min,
            mid_close_ticks: 500_000.5,
            spread_close_ticks: Some(1),
            close_ticks: Some(500_000),
            volume: 5.0,
            hist,
        }
    }

    /// SPEC §16.1: no valid VA before the warm-up, even when `min_va_bins` is met at once.
    #[test]
    fn no_valid_value_area_before_the_warm_up() {
        let hist: Vec<(i64, i64)> = (0..50).map(|k| (499_975 + k, 1_000)).collect();
        let cfg = Stage2Config {
            min_va_bins: 20,
            warmup_minutes: 30,
            rolling_window_minutes: 10,
            ..Stage2Config::default()
        };
        let mut s = Stage2::new(cfg).unwrap();
        let t0 = 1_704_067_200_000;
        let valid: Vec<bool> = (0..40)
            .map(|k| s.push(busy(t0 + k * MINUTE_MS, &hist)).unwrap().va_valid)
            .collect();
        // the 30th minute of data (index 29) is the first with 30 minutes of history
        assert_eq!(valid.iter().position(|v| *v), Some(29), "{valid:?}");
        assert!(valid[29..].iter().all(|v| *v));
        // the window, when longer, sets the warm-up
        let cfg = Stage2Config {
            min_va_bins: 20,
            warmup_minutes: 0,
            rolling_window_minutes: 12,
            ..Stage2Config::default()
        };
        let mut s = Stage2::new(cfg).unwrap();
        let first = (0..20).position(|k| s.push(busy(t0 + k * MINUTE_MS, &hist)).unwrap().va_valid);
        assert_eq!(first, Some(11));
    }
}
