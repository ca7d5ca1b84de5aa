//! Trade ↔ quote alignment (SPEC §4.4 / §5.7) with the `quote_match` tie rule.
//!
//! The book keeps the latest quote and the latest quote of an *earlier* millisecond. A trade
//! at `T` is matched once every quote with timestamp `<= T` has been seen (the engine defers
//! trades of the current millisecond until time moves on), so the answer does not depend on
//! how trades and quotes of the same millisecond were interleaved by the feed:
//!
//! * `StrictlyBefore`: the latest quote with `ts < T`. On the real Binance windows the quote
//!   update a trade causes carries the trade's own millisecond; matching it would compare
//!   the trade with the post-trade book and mis-sign it.
//! * `AtOrBefore`: the latest quote with `ts <= T` (the spec's literal wording).
//!
//! A stale quote (older than `max_quote_staleness_ms`) is still used (SPEC §4.4); its age is
//! reported so the caller can count stale matches.

use serde::{Deserialize, Serialize};

use crate::QuoteMatch;
use at_types::Quote;

/// Latest quotes needed to answer both tie rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuoteBook {
    last: Option<Quote>,
    /// Latest quote whose timestamp is strictly below `last.ts_ms`.
    before_last_ms: Option<Quote>,
}

/// The quote a trade was matched to and its age.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Matched {
    pub quote: Quote,
    pub staleness_ms: i64,
}

impl QuoteBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a quote; quotes must arrive in non-decreasing time.
    #[inline]
    pub fn push(&mut self, q: Quote) {
        if let Some(last) = self.last {
            if q.ts_ms > last.ts_ms {
                self.before_last_ms = Some(last);
            }
        }
        self.last = Some(q);
    }

    /// Latest quote overall (used for L1 at minute close: "at or before" the close time).
    #[inline]
    pub fn last(&self) -> Option<Quote> {
        self.last
    }

    /// The quote matched to a trade at `ts_ms`, given every quote with `ts <= ts_ms` has
    /// been pushed and none later.
    #[inline]
    pub fn match_trade(&self, ts_ms: i64, rule: QuoteMatch) -> Option<Matched> {
        let q = match rule {
            QuoteMatch::AtOrBefore => self.last,
            QuoteMatch::StrictlyBefore => match self.last {
                Some(l) if l.ts_ms < ts_ms => Some(l),
                Some(_) => self.before_last_ms,
                None => None,
            },
        }?;
        Some(Matched {
            quote: q,
            staleness_ms: ts_ms - q.ts_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ts: i64, bid: i64) -> Quote {
        Quote {
            ts_ms: ts,
            seq: 0,
            bid_ticks: bid,
            bid_sz: 1.0,
            ask_ticks: bid + 1,
            ask_sz: 1.0,
        }
    }

    #[test]
    fn picks_the_right_quote_for_each_rule() {
        let mut b = QuoteBook::new();
        assert!(b.match_trade(5, QuoteMatch::AtOrBefore).is_none());
        b.push(q(100, 10));
        b.push(q(200, 20));
        b.push(q(200, 21)); // same millisecond, later update
                            // trade at 200: strictly before sees the quote of 100, at-or-before the last at 200
        let s = b.match_trade(200, QuoteMatch::StrictlyBefore).unwrap();
        assert_eq!((s.quote.bid_ticks, s.staleness_ms), (10, 100));
        let a = b.match_trade(200, QuoteMatch::AtOrBefore).unwrap();
        assert_eq!((a.quote.bid_ticks, a.staleness_ms), (21, 0));
        // trade at 250: both rules see the last quote of 200
        assert_eq!(
            b.match_trade(250, QuoteMatch::StrictlyBefore)
                .unwrap()
                .quote
                .bid_ticks,
            21
        );
        assert_eq!(
            b.match_trade(250, QuoteMatch::AtOrBefore)
                .unwrap()
                .staleness_ms,
            50
        );
    }

    #[test]
    fn strictly_before_with_only_same_ms_quotes_has_no_match() {
        let mut b = QuoteBook::new();
        b.push(q(100, 10));
        assert!(b.match_trade(100, QuoteMatch::StrictlyBefore).is_none());
        assert!(b.match_trade(100, QuoteMatch::AtOrBefore).is_some());
    }

    #[test]
    fn stale_quote_is_used_and_its_age_reported() {
        let mut b = QuoteBook::new();
        b.push(q(0, 10));
        let m = b.match_trade(10_000, QuoteMatch::StrictlyBefore).unwrap();
        assert_eq!(m.quote.bid_ticks, 10);
        assert_eq!(m.staleness_ms, 10_000);
    }
}
