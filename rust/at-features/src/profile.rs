//! Stage 2 volume profile: rolling base-resolution histogram, aggregation to the bin width,
//! POC / VAH / VAL (SPEC §5.5–§5.6).
//!
//! Decisions where the spec is silent (also in `docs/features.md`):
//! * **Window by time:** the profile at minute `t` holds the minutes `t-239 .. t` that exist;
//!   a gap in the data simply contributes nothing (no minute is "shifted in").
//! * **POC ties:** among bins of equal maximal volume, the one nearest the middle of the
//!   occupied price range wins; if two are equally near, the lower price.
//! * **Expansion ties:** the spec adds "the next highest-volume adjacent bin". When the bins
//!   above and below hold equal volume (often both zero inside a gap), the side with more
//!   volume left beyond it wins, so a value area crosses a gap towards where the volume is;
//!   if that is equal too, the lower bin.
//! * **Stop rule:** expansion stops at the first step where `V_cum >= va_fraction * V_total`.
//! * **Validity:** `va_bin_count` = aggregated bins with non-zero volume in the whole profile
//!   (what SPEC §5.6 / §15.2 test against `min_va_bins`); valid iff `>= min_va_bins`.
//!   POC / VAH / VAL are still reported for an invalid profile (for display); the strategy
//!   must not trade them. An empty profile has no POC / VA (NaN).
//! * POC / VAL / VAH are the lower edges of their aggregated bins (as in SPEC §20.3).
//! * Aggregated bin edges are multiples of the bin width in ticks (`floor(edge / w) * w`,
//!   SPEC §5.5), so they do not depend on where the window happens to start.

use serde::{Deserialize, Serialize};

use std::collections::VecDeque;

/// Dense histogram over integer keys with an offset, growing as needed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Dense {
    origin: i64,
    vals: Vec<i64>,
}

impl Dense {
    #[inline]
    fn add(&mut self, key: i64, v: i64) {
        let mut i = key - self.origin;
        if self.vals.is_empty() || i < 0 || i >= self.vals.len() as i64 {
            self.grow(key);
            i = key - self.origin;
        }
        self.vals[i as usize] += v;
    }

    #[inline]
    fn get(&self, key: i64) -> i64 {
        let i = key - self.origin;
        if i < 0 || i >= self.vals.len() as i64 {
            0
        } else {
            self.vals[i as usize]
        }
    }

    #[cold]
    fn grow(&mut self, key: i64) {
        if self.vals.is_empty() || self.vals.iter().all(|&v| v == 0) {
            let len = self.vals.len().max(4096);
            self.vals.clear();
            self.vals.resize(len, 0);
            self.origin = key - (len as i64) / 2;
            return;
        }
        let first = self.vals.iter().position(|&v| v != 0).unwrap_or(0) as i64 + self.origin;
        let last = self.vals.iter().rposition(|&v| v != 0).unwrap_or(0) as i64 + self.origin;
        let lo = first.min(key);
        let hi = last.max(key);
        let span = (hi - lo + 1) as usize;
        let len = (span * 2).max(4096);
        let origin = lo - ((len - span) / 2) as i64;
        let mut vals = vec![0i64; len];
        for k in first..=last {
            vals[(k - origin) as usize] = self.vals[(k - self.origin) as usize];
        }
        self.origin = origin;
        self.vals = vals;
    }

    fn clear(&mut self) {
        self.vals.iter_mut().for_each(|v| *v = 0);
    }
}

/// Result of the value-area computation on an aggregated histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueArea {
    /// Lower edges of the POC / VAL / VAH bins in ticks.
    pub poc: i64,
    pub val: i64,
    pub vah: i64,
    /// Volume inside the VA and in the whole profile (units).
    pub va_volume: i64,
    pub total: i64,
}

/// Value area of contiguous bins `vols[0..]` whose bin `i` has lower edge
/// `first_edge + i * width` (ticks). `None` when the histogram holds no volume.
pub fn value_area(
    vols: &[i64],
    first_edge: i64,
    width: i64,
    va_fraction: f64,
) -> Option<ValueArea> {
    let n = vols.len();
    let total: i64 = vols.iter().sum();
    if n == 0 || total <= 0 {
        return None;
    }
    // occupied range (for the POC tie rule)
    let first_nz = vols.iter().position(|&v| v > 0)?;
    let last_nz = vols.iter().rposition(|&v| v > 0)?;
    let max = vols[first_nz..=last_nz].iter().copied().max()?;
    // twice the centre, to stay in integers
    let centre2 = (first_nz + last_nz) as i64;
    let mut poc = usize::MAX;
    let mut best_dist = i64::MAX;
    for (i, &v) in vols.iter().enumerate().take(last_nz + 1).skip(first_nz) {
        if v == max {
            let d = (2 * i as i64 - centre2).abs();
            if d < best_dist {
                best_dist = d;
                poc = i;
            }
        }
    }
    let target = va_fraction * total as f64;
    let (mut l, mut r) = (poc, poc);
    let mut cum = vols[poc];
    // volume strictly below l and strictly above r
    let mut below: i64 = vols[..l].iter().sum();
    let mut above: i64 = total - below - cum;
    while (cum as f64) < target {
        let can_down = l > 0;
        let can_up = r + 1 < n;
        let go_up = match (can_down, can_up) {
            (false, false) => break,
            (false, true) => true,
            (true, false) => false,
            (true, true) => {
                let (d, u) = (vols[l - 1], vols[r + 1]);
                if u != d {
                    u > d
                } else {
                    above - u > below - d
                }
            }
        };
        if go_up {
            r += 1;
            cum += vols[r];
            above -= vols[r];
        } else {
            l -= 1;
            cum += vols[l];
            below -= vols[l];
        }
    }
    Some(ValueArea {
        poc: first_edge + poc as i64 * width,
        val: first_edge + l as i64 * width,
        vah: first_edge + r as i64 * width,
        va_volume: cum,
        total,
    })
}

/// Summary of the profile at one minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfileStats {
    pub va: Option<ValueArea>,
    /// Aggregated bins with non-zero volume.
    pub nonzero_bins: i64,
    pub total: i64,
}

/// Rolling profile over the last `window` minutes at base resolution, with the aggregated
/// histogram at the applied bin width maintained incrementally (add/subtract per minute)
/// and rebuilt from the base histogram on rebucketing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollingProfile {
    window_ms: i64,
    minutes: VecDeque<(i64, Vec<(i64, i64)>)>,
    base: Dense,
    agg: Dense,
    width: i64,
    nonzero_agg: i64,
    total: i64,
    scratch: Vec<i64>,
}

impl RollingProfile {
    /// `window` in minutes; `width` the initial aggregated bin width in ticks.
    pub fn new(window_minutes: i64, width: i64) -> Self {
        Self {
            window_ms: window_minutes * at_types::MINUTE_MS,
            minutes: VecDeque::new(),
            base: Dense::default(),
            agg: Dense::default(),
            width: width.max(1),
            nonzero_agg: 0,
            total: 0,
            scratch: Vec::new(),
        }
    }

    pub fn width(&self) -> i64 {
        self.width
    }

    pub fn total(&self) -> i64 {
        self.total
    }

    #[inline]
    fn agg_add(&mut self, edge: i64, v: i64) {
        let k = edge.div_euclid(self.width);
        let before = self.agg.get(k);
        self.agg.add(k, v);
        let after = before + v;
        if before == 0 && after != 0 {
            self.nonzero_agg += 1;
        } else if before != 0 && after == 0 {
            self.nonzero_agg -= 1;
        }
    }

    /// Add minute `ts_min`'s histogram and drop minutes older than the window.
    pub fn push(&mut self, ts_min: i64, hist: &[(i64, i64)]) {
        for &(edge, v) in hist {
            self.base.add(edge, v);
            self.agg_add(edge, v);
            self.total += v;
        }
        self.minutes.push_back((ts_min, hist.to_vec()));
        let oldest_kept = ts_min - self.window_ms + at_types::MINUTE_MS;
        while let Some((t, _)) = self.minutes.front() {
            if *t >= oldest_kept {
                break;
            }
            let (_, old) = self.minutes.pop_front().expect("front exists");
            for &(edge, v) in &old {
                self.base.add(edge, -v);
                self.agg_add(edge, -v);
                self.total -= v;
            }
        }
    }

    /// Re-aggregate the base histogram at a new width (ticks).
    pub fn rebucket(&mut self, width: i64) {
        self.width = width.max(1);
        self.agg.clear();
        self.nonzero_agg = 0;
        let (lo, hi) = match self.edge_range() {
            Some(r) => r,
            None => return,
        };
        for edge in lo..=hi {
            let v = self.base.get(edge);
            if v != 0 {
                self.agg_add(edge, v);
            }
        }
    }

    /// Lowest and highest base-bin edge present in the window.
    fn edge_range(&self) -> Option<(i64, i64)> {
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        for (_, h) in &self.minutes {
            if let (Some(f), Some(l)) = (h.first(), h.last()) {
                lo = lo.min(f.0);
                hi = hi.max(l.0);
            }
        }
        (lo <= hi).then_some((lo, hi))
    }

    /// Base-resolution histogram of the window: (edge, units), sorted, zero bins omitted.
    pub fn base_hist(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if let Some((lo, hi)) = self.edge_range() {
            for e in lo..=hi {
                let v = self.base.get(e);
                if v != 0 {
                    out.push((e, v));
                }
            }
        }
        out
    }

    /// Aggregated histogram at the applied width: (lower edge, units), contiguous from the
    /// lowest to the highest occupied bin (zero bins included).
    pub fn agg_hist(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if let Some((lo, hi)) = self.edge_range() {
            let w = self.width;
            for k in lo.div_euclid(w)..=hi.div_euclid(w) {
                out.push((k * w, self.agg.get(k)));
            }
        }
        out
    }

    /// Value area and counts at the applied width.
    pub fn stats(&mut self, va_fraction: f64) -> ProfileStats {
        let Some((lo, hi)) = self.edge_range() else {
            return ProfileStats {
                va: None,
                nonzero_bins: 0,
                total: 0,
            };
        };
        let w = self.width;
        let (klo, khi) = (lo.div_euclid(w), hi.div_euclid(w));
        self.scratch.clear();
        for k in klo..=khi {
            self.scratch.push(self.agg.get(k));
        }
        let va = value_area(&self.scratch, klo * w, w, va_fraction);
        ProfileStats {
            va,
            nonzero_bins: self.nonzero_agg,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_20_3_value_area() {
        // bins $49,800 .. $50,300 by $100 (tick 0.1 -> 1000 ticks)
        let vols = [100, 250, 400, 300, 150, 50];
        let va = value_area(&vols, 498_000, 1_000, 0.70).unwrap();
        assert_eq!(va.poc, 500_000);
        assert_eq!(va.val, 499_000);
        assert_eq!(va.vah, 501_000);
        assert_eq!((va.va_volume, va.total), (950, 1250));
    }

    #[test]
    fn poc_at_edge_expands_inward_only() {
        let va = value_area(&[10, 5, 1, 1], 0, 1, 0.9).unwrap();
        assert_eq!((va.poc, va.val, va.vah), (0, 0, 2));
        let va = value_area(&[1, 1, 5, 10], 0, 1, 0.9).unwrap();
        assert_eq!((va.poc, va.val, va.vah), (3, 1, 3));
    }

    #[test]
    fn va_includes_zero_bins_of_gaps() {
        // a gap between POC and the rest: must be crossed, contiguously
        let va = value_area(&[0, 8, 0, 0, 10, 0], 0, 1, 0.9).unwrap();
        assert_eq!(va.poc, 4);
        // ties of zero volume at both sides: cross towards the remaining volume (down)
        assert_eq!((va.val, va.vah), (1, 4));
        assert_eq!(va.va_volume, 18);
    }

    #[test]
    fn poc_tie_prefers_the_middle_then_lower() {
        let va = value_area(&[5, 1, 5, 1, 5], 0, 1, 0.1).unwrap();
        assert_eq!(va.poc, 2, "middle of three equal maxima");
        let va = value_area(&[5, 1, 1, 5], 0, 1, 0.1).unwrap();
        assert_eq!(va.poc, 0, "equidistant maxima: the lower");
    }

    #[test]
    fn expansion_tie_goes_to_more_remaining_volume_then_lower() {
        // neighbours of POC equal (3, 3); more beyond above
        let va = value_area(&[0, 3, 10, 3, 4], 0, 1, 0.6).unwrap();
        assert_eq!((va.val, va.vah), (2, 3));
        // full symmetry: lower
        let va = value_area(&[3, 10, 3], 0, 1, 0.7).unwrap();
        assert_eq!((va.val, va.vah), (0, 1));
    }

    #[test]
    fn empty_histogram_has_no_va() {
        assert!(value_area(&[], 0, 1, 0.7).is_none());
        assert!(value_area(&[0, 0], 0, 1, 0.7).is_none());
    }

    #[test]
    fn rolling_add_subtract_returns_to_empty_and_rebuckets() {
        let mut p = RollingProfile::new(2, 1);
        p.push(0, &[(100, 5), (101, 3)]);
        p.push(60_000, &[(101, 2), (110, 1)]);
        assert_eq!(p.base_hist(), vec![(100, 5), (101, 5), (110, 1)]);
        p.push(120_000, &[]); // minute 0 leaves the 2-minute window
        assert_eq!(p.base_hist(), vec![(101, 2), (110, 1)]);
        assert_eq!(p.total(), 3);
        p.rebucket(10);
        assert_eq!(p.agg_hist(), vec![(100, 2), (110, 1)]);
        assert_eq!(p.stats(0.7).nonzero_bins, 2);
        p.push(180_000, &[]);
        p.push(240_000, &[]);
        assert!(p.base_hist().is_empty());
        let s = p.stats(0.7);
        assert_eq!((s.total, s.nonzero_bins), (0, 0));
        assert!(s.va.is_none());
    }

    #[test]
    fn aggregation_uses_floor_edges() {
        let mut p = RollingProfile::new(10, 3);
        p.push(0, &[(-1, 1), (0, 1), (2, 1), (3, 1)]);
        assert_eq!(p.agg_hist(), vec![(-3, 1), (0, 2), (3, 1)]);
    }
}
