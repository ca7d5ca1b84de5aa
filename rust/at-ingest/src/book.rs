//! One side of a price-level book as a sorted vector with the best level at the end.
//!
//! Deltas touch levels near the top of the book almost always, so keeping the best price
//! at the *end* of a contiguous vector makes inserts and deletes there a short memmove,
//! and reading the top is O(1). Prices and sizes are exact fixed-point integers.

/// Levels of one side. Bids are stored by ascending price, asks by descending price, so
/// `last()` is the best level of either side.
#[derive(Debug, Clone, Default)]
pub struct Side {
    levels: Vec<(i64, i64)>,
    ascending: bool,
}

/// Outcome of applying one level update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Set,
    Deleted,
    /// Size 0 for a price the book does not hold.
    DeleteAbsent,
}

impl Side {
    pub fn bids() -> Self {
        Self {
            levels: Vec::with_capacity(1024),
            ascending: true,
        }
    }

    pub fn asks() -> Self {
        Self {
            levels: Vec::with_capacity(1024),
            ascending: false,
        }
    }

    #[inline]
    fn find(&self, px: i64) -> Result<usize, usize> {
        // most updates are within a few levels of the top (the end): scan those linearly,
        // which avoids the unpredictable branches of a binary search over 500 levels
        let n = self.levels.len();
        let near = n.saturating_sub(16);
        for i in (near..n).rev() {
            let p = self.levels[i].0;
            if p == px {
                return Ok(i);
            }
            let past = if self.ascending { p < px } else { p > px };
            if past {
                return Err(i + 1);
            }
        }
        if near == 0 {
            return Err(0);
        }
        if self.ascending {
            self.levels.binary_search_by(|l| l.0.cmp(&px))
        } else {
            self.levels.binary_search_by(|l| px.cmp(&l.0))
        }
    }

    /// Set the size at `px` (absolute, as Bybit sends it); size 0 deletes the level.
    #[inline]
    pub fn apply(&mut self, px: i64, sz: i64) -> Applied {
        // fast path: the update is at the current best level
        if let Some(last) = self.levels.last_mut() {
            if last.0 == px {
                if sz == 0 {
                    self.levels.pop();
                    return Applied::Deleted;
                }
                last.1 = sz;
                return Applied::Set;
            }
        }
        match self.find(px) {
            Ok(i) => {
                if sz == 0 {
                    self.levels.remove(i);
                    Applied::Deleted
                } else {
                    self.levels[i].1 = sz;
                    Applied::Set
                }
            }
            Err(i) => {
                if sz == 0 {
                    Applied::DeleteAbsent
                } else {
                    self.levels.insert(i, (px, sz));
                    Applied::Set
                }
            }
        }
    }

    /// Replace the whole side with a snapshot's levels (any order; the last duplicate
    /// price wins; zero sizes are not levels).
    pub fn reset(&mut self, levels: &[(i64, i64)]) {
        self.levels.clear();
        self.levels
            .extend(levels.iter().copied().filter(|l| l.1 != 0));
        // stable sort keeps the input order of duplicates: keep the last of each run
        if self.ascending {
            self.levels.sort_by_key(|l| l.0);
        } else {
            self.levels.sort_by_key(|l| std::cmp::Reverse(l.0));
        }
        let mut w = 0;
        for r in 0..self.levels.len() {
            if w > 0 && self.levels[w - 1].0 == self.levels[r].0 {
                self.levels[w - 1] = self.levels[r];
            } else {
                self.levels[w] = self.levels[r];
                w += 1;
            }
        }
        self.levels.truncate(w);
    }

    pub fn clear(&mut self) {
        self.levels.clear();
    }

    #[inline]
    pub fn best(&self) -> Option<(i64, i64)> {
        self.levels.last().copied()
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_is_highest_bid_and_lowest_ask() {
        let mut b = Side::bids();
        let mut a = Side::asks();
        for (px, sz) in [(100, 1), (102, 2), (101, 3)] {
            b.apply(px, sz);
            a.apply(px + 10, sz);
        }
        assert_eq!(b.best(), Some((102, 2)));
        assert_eq!(a.best(), Some((110, 1)));
        assert_eq!(b.apply(102, 0), Applied::Deleted);
        assert_eq!(b.best(), Some((101, 3)));
        assert_eq!(b.apply(99, 0), Applied::DeleteAbsent);
        assert_eq!(a.apply(111, 0), Applied::Deleted);
        assert_eq!(a.apply(110, 7), Applied::Set);
        assert_eq!(a.best(), Some((110, 7)));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn reset_sorts_drops_zeros_and_keeps_last_duplicate() {
        let mut a = Side::asks();
        a.reset(&[(105, 1), (103, 2), (104, 0), (103, 9), (110, 4)]);
        assert_eq!(a.best(), Some((103, 9)));
        assert_eq!(a.len(), 3);
        a.apply(103, 0);
        assert_eq!(a.best(), Some((105, 1)));
    }

    #[test]
    fn deep_books_match_a_btreemap() {
        use std::collections::BTreeMap;
        let mut rng: u64 = 12345;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for ascending in [true, false] {
            let mut side = if ascending {
                Side::bids()
            } else {
                Side::asks()
            };
            let mut map: BTreeMap<i64, i64> = BTreeMap::new();
            for _ in 0..20_000 {
                let px = (next() % 600) as i64;
                let sz = if next() % 4 == 0 {
                    0
                } else {
                    (next() % 9 + 1) as i64
                };
                side.apply(px, sz);
                if sz == 0 {
                    map.remove(&px);
                } else {
                    map.insert(px, sz);
                }
                let best = if ascending {
                    map.iter().next_back()
                } else {
                    map.iter().next()
                };
                assert_eq!(side.best(), best.map(|(&p, &s)| (p, s)));
                assert_eq!(side.len(), map.len());
            }
        }
    }
}
