//! Probability of Backtest Overfitting by combinatorially symmetric cross-validation
//! (Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", 2017).
//!
//! The T periods are cut into S contiguous blocks. Every way of choosing S/2 blocks is a
//! split: the chosen blocks are in-sample (IS), the rest out-of-sample (OOS). In each split
//! the trial with the best IS Sharpe is "selected", and its OOS Sharpe is ranked among all
//! trials' OOS Sharpe: ω = rank / (N + 1), logit λ = ln(ω / (1 − ω)). PBO is the share of
//! splits where the selected trial lands at or below the OOS median (λ ≤ 0). Also reported:
//! the OLS slope of the selected trial's OOS Sharpe on its IS Sharpe (performance
//! degradation) and the probability that the selected trial loses OOS.
//!
//! Purging: the returns of a period depend on the periods before it (feature windows,
//! positions held across midnight). A block whose predecessor lies in the other half loses
//! its first `purge` periods, in both halves, so no kept period of one half is within the
//! embargo after a period of the other.
//!
//! Ties (e.g. the many combinations that never trade, Sharpe 0) take the average rank.

use at_types::AtError;

/// How the periods are split.
#[derive(Debug, Clone, Copy)]
pub struct CscvConfig {
    /// S, even, 2..=20 (S = 16 makes C(16, 8) = 12,870 splits).
    pub blocks: usize,
    /// Periods dropped at the start of a block that follows a block of the other half.
    pub purge: usize,
    /// Worker threads (1 = the calling thread).
    pub threads: usize,
}

/// The outcome of CSCV over one returns matrix.
#[derive(Debug, Clone)]
pub struct Pbo {
    pub pbo: f64,
    pub n_splits: usize,
    /// Per split, λ, the selected trial and its IS / OOS Sharpe (per period). Splits are
    /// in the order of their in-sample blocks' bit mask (block b = bit b), ascending.
    pub logits: Vec<f64>,
    pub selected: Vec<u32>,
    pub is_sharpe: Vec<f64>,
    pub oos_sharpe: Vec<f64>,
    /// OLS fit `oos = intercept + slope · is` over the splits' selected trials.
    pub slope: f64,
    pub intercept: f64,
    /// Share of splits whose selected trial has a negative OOS Sharpe.
    pub prob_oos_loss: f64,
    /// Block boundaries: S + 1 period offsets.
    pub bounds: Vec<usize>,
}

fn bad(message: String) -> AtError {
    AtError::InvalidInput {
        location: "cscv".into(),
        message,
    }
}

/// Per-block sums of one kind (all blocks or purged blocks), block-major: `[b * n + i]`.
struct BlockSums {
    s1: Vec<f64>,
    s2: Vec<f64>,
    len: Vec<usize>,
}

/// CSCV over `returns`, N × T row-major (trial i's T period returns at `i*t..(i+1)*t`).
pub fn cscv(returns: &[f64], t: usize, cfg: &CscvConfig) -> Result<Pbo, AtError> {
    let s = cfg.blocks;
    if s < 2 || !s.is_multiple_of(2) || s > 20 {
        return Err(bad(format!("blocks must be even and in 2..=20, got {s}")));
    }
    let n = crate::check_matrix(returns, t, 1, 2, "cscv")?;
    let (base, rem) = (t / s, t % s);
    let mut bounds = vec![0usize];
    for b in 0..s {
        bounds.push(bounds[b] + base + usize::from(b < rem));
    }
    if base <= cfg.purge {
        return Err(bad(format!(
            "{s} blocks of {t} periods are {base}{} periods long: a purge of {} periods \
             would leave a block empty (use fewer blocks, a shorter embargo or a longer history)",
            if rem > 0 {
                format!("-{}", base + 1)
            } else {
                String::new()
            },
            cfg.purge
        )));
    }
    // the smallest half: S/2 shortest blocks, all purged but the first
    let min_half = (base - cfg.purge) * (s / 2);
    if min_half < 2 {
        return Err(bad(format!(
            "a half of {s} blocks over {t} periods keeps {min_half} periods after the purge: \
             a Sharpe needs at least 2"
        )));
    }
    // block sums of each trial's returns net of its own mean (variance is shift-invariant;
    // the shift keeps s2 − s1²/n from cancelling)
    let means: Vec<f64> = returns
        .chunks_exact(t)
        .map(|r| r.iter().sum::<f64>() / t as f64)
        .collect();
    let sums = |skip: usize| -> BlockSums {
        let mut s1 = vec![0.0; s * n];
        let mut s2 = vec![0.0; s * n];
        let mut len = vec![0; s];
        for b in 0..s {
            let (lo, hi) = (bounds[b] + skip, bounds[b + 1]);
            len[b] = hi - lo;
            for i in 0..n {
                let row = &returns[i * t + lo..i * t + hi];
                let (mut a1, mut a2) = (0.0, 0.0);
                for &x in row {
                    let d = x - means[i];
                    a1 += d;
                    a2 += d * d;
                }
                s1[b * n + i] = a1;
                s2[b * n + i] = a2;
            }
        }
        BlockSums { s1, s2, len }
    };
    let full = sums(0);
    let purged = sums(cfg.purge);
    let masks: Vec<u32> = (0u32..(1u32 << s))
        .filter(|m| m.count_ones() as usize == s / 2)
        .collect();
    let threads = cfg.threads.max(1).min(masks.len());
    let chunk = masks.len().div_ceil(threads);
    let run = |ms: &[u32]| -> Vec<(f64, u32, f64, f64)> {
        let mut w = Work::new(n);
        ms.iter()
            .map(|&m| w.split(m, s, &full, &purged, &means))
            .collect()
    };
    let per: Vec<(f64, u32, f64, f64)> = if threads <= 1 {
        run(&masks)
    } else {
        let mut out = Vec::with_capacity(masks.len());
        std::thread::scope(|sc| {
            let hs: Vec<_> = masks
                .chunks(chunk)
                .map(|c| sc.spawn(move || run(c)))
                .collect();
            for h in hs {
                out.extend(h.join().expect("cscv worker panicked"));
            }
        });
        out
    };
    let n_splits = per.len();
    let logits: Vec<f64> = per.iter().map(|x| x.0).collect();
    let selected: Vec<u32> = per.iter().map(|x| x.1).collect();
    let is_sharpe: Vec<f64> = per.iter().map(|x| x.2).collect();
    let oos_sharpe: Vec<f64> = per.iter().map(|x| x.3).collect();
    let pbo = logits.iter().filter(|&&l| l <= 0.0).count() as f64 / n_splits as f64;
    let prob_oos_loss = oos_sharpe.iter().filter(|&&x| x < 0.0).count() as f64 / n_splits as f64;
    let (slope, intercept) = ols(&is_sharpe, &oos_sharpe);
    Ok(Pbo {
        pbo,
        n_splits,
        logits,
        selected,
        is_sharpe,
        oos_sharpe,
        slope,
        intercept,
        prob_oos_loss,
        bounds,
    })
}

/// Per-thread buffers of one split's half sums.
struct Work {
    is1: Vec<f64>,
    is2: Vec<f64>,
    oos1: Vec<f64>,
    oos2: Vec<f64>,
    oos_sr: Vec<f64>,
}

impl Work {
    fn new(n: usize) -> Work {
        Work {
            is1: vec![0.0; n],
            is2: vec![0.0; n],
            oos1: vec![0.0; n],
            oos2: vec![0.0; n],
            oos_sr: vec![0.0; n],
        }
    }

    /// One split: (λ, selected trial, its IS Sharpe, its OOS Sharpe).
    fn split(
        &mut self,
        mask: u32,
        s: usize,
        full: &BlockSums,
        purged: &BlockSums,
        means: &[f64],
    ) -> (f64, u32, f64, f64) {
        let n = means.len();
        for v in [&mut self.is1, &mut self.is2, &mut self.oos1, &mut self.oos2] {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
        let (mut n_is, mut n_oos) = (0usize, 0usize);
        for b in 0..s {
            let in_is = mask >> b & 1 == 1;
            let after_other = b > 0 && (mask >> (b - 1) & 1 == 1) != in_is;
            let src = if after_other { purged } else { full };
            let (a1, a2) = if in_is {
                n_is += src.len[b];
                (&mut self.is1, &mut self.is2)
            } else {
                n_oos += src.len[b];
                (&mut self.oos1, &mut self.oos2)
            };
            let (b1, b2) = (&src.s1[b * n..(b + 1) * n], &src.s2[b * n..(b + 1) * n]);
            for (x, y) in a1.iter_mut().zip(b1) {
                *x += y;
            }
            for (x, y) in a2.iter_mut().zip(b2) {
                *x += y;
            }
        }
        let (mut best, mut best_sr) = (0usize, f64::NEG_INFINITY);
        for (i, ((&s1, &s2), &mu)) in self.is1.iter().zip(&self.is2).zip(means).enumerate() {
            let sr = sharpe(s1, s2, n_is, mu);
            if sr > best_sr {
                (best, best_sr) = (i, sr);
            }
        }
        for (o, ((&s1, &s2), &mu)) in self
            .oos_sr
            .iter_mut()
            .zip(self.oos1.iter().zip(&self.oos2).zip(means))
        {
            *o = sharpe(s1, s2, n_oos, mu);
        }
        let mine = self.oos_sr[best];
        let (mut less, mut equal) = (0usize, 0usize);
        for &x in &self.oos_sr {
            if x < mine {
                less += 1;
            } else if x == mine {
                equal += 1;
            }
        }
        let rank = less as f64 + (equal as f64 + 1.0) / 2.0;
        let w = rank / (n as f64 + 1.0);
        ((w / (1.0 - w)).ln(), best as u32, best_sr, mine)
    }
}

/// Per-period Sharpe of a half from its sums of deviations from the trial's mean `mu`.
#[inline]
fn sharpe(s1: f64, s2: f64, n: usize, mu: f64) -> f64 {
    let nf = n as f64;
    let dev_mean = s1 / nf;
    let var = (s2 - s1 * dev_mean) / (nf - 1.0);
    // below this the series is constant up to rounding: a trial that did not trade
    if var <= 1e-24 {
        return 0.0;
    }
    (mu + dev_mean) / var.sqrt()
}

fn ols(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
    }
    if sxx > 0.0 {
        let slope = sxy / sxx;
        (slope, my - slope * mx)
    } else {
        (f64::NAN, f64::NAN)
    }
}
