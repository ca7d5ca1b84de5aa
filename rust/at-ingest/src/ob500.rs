//! Bybit order-book archive (`<date>_<SYM>_ob500.data`) to L1 quotes.
//!
//! Each line is one WebSocket order-book message:
//! `{"topic":"orderbook.500.BTCUSDT","type":"snapshot"|"delta","ts":…,"cts":…,
//!   "data":{"s":"BTCUSDT","b":[["px","sz"],…],"a":[…],"u":…,"seq":…}}`.
//!
//! Domain rules and pitfalls:
//! * A snapshot, or any message with `u == 1` (Bybit's service restart), replaces the book.
//! * Delta sizes are *absolute* level sizes, not increments; size `"0"` deletes the level.
//!   Hence a lost delta (a `u` gap) leaves only the levels it touched stale, and the book
//!   heals as those levels change again: the gap is reported, never hidden, and decoding
//!   goes on.
//! * The quote time is `cts` (matching-engine time), not `ts` (push time, later and
//!   batched); files without `cts` fall back to `ts`, counted in the stats.
//! * One L1 quote is emitted per message whose top of book (best bid/ask price and size)
//!   differs from the last emitted one; `seq` = `u`, and the physical line is kept so
//!   every anomaly and reject points at `file:line`.
//! * A crossed or locked top (bid >= ask) cannot rest on a matching engine: it means a
//!   stale level, and is reported at the line that produced it.

use crate::book::{Applied, Side};
use crate::scan::{lossy, Cursor, ScanError, SCALE};

/// Kind of a problem found at one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// The line is not a readable order-book message (bad JSON, missing or bad field).
    Invalid,
    /// `u` does not follow the previous message's `u` + 1.
    UGap,
    /// The top of book is crossed or locked after applying the message.
    Crossed,
    /// A delta arrived before any snapshot: there is no book to apply it to.
    DeltaBeforeSnapshot,
    /// The message is for another symbol than the file's first message.
    Symbol,
}

impl AnomalyKind {
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Invalid => "invalid",
            AnomalyKind::UGap => "u_gap",
            AnomalyKind::Crossed => "crossed",
            AnomalyKind::DeltaBeforeSnapshot => "delta_before_snapshot",
            AnomalyKind::Symbol => "symbol",
        }
    }
}

/// One problem: physical line (1-based), kind, JSON field and a readable reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub line: u64,
    pub kind: AnomalyKind,
    pub field: &'static str,
    pub detail: String,
}

/// L1 quotes emitted so far (struct of arrays, fixed-point converted to f64 on output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L1Quotes {
    pub ts_ms: Vec<i64>,
    pub seq: Vec<i64>,
    pub line: Vec<i64>,
    pub bid_px: Vec<f64>,
    pub bid_sz: Vec<f64>,
    pub ask_px: Vec<f64>,
    pub ask_sz: Vec<f64>,
}

impl L1Quotes {
    pub fn len(&self) -> usize {
        self.ts_ms.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ts_ms.is_empty()
    }
}

/// Counters of what was read (all of them end up in the import summary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub lines: u64,
    pub blank_lines: u64,
    pub messages: u64,
    pub snapshots: u64,
    pub deltas: u64,
    /// Book resets after the first one (new snapshot or `u == 1`).
    pub resets: u64,
    pub levels_applied: u64,
    /// Deletes of a price the book did not hold (harmless, counted).
    pub delete_absent: u64,
    /// Messages after which one side of the book was empty (no L1 quote possible).
    pub one_sided: u64,
    /// Messages without `cts`, stamped with `ts` instead.
    pub ts_fallback: u64,
    pub quotes: u64,
    pub max_depth: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Snapshot,
    Delta,
}

/// Fields of one message; level arrays go to the decoder's scratch vectors.
struct Msg<'a> {
    kind: Option<Kind>,
    kind_raw: &'a [u8],
    ts: Option<i64>,
    cts: Option<i64>,
    u: Option<i64>,
    symbol: &'a [u8],
    has_b: bool,
    has_a: bool,
}

/// Streaming decoder: feed it byte chunks of any size (lines may be split across chunks).
pub struct ObDecoder {
    pending: Vec<u8>,
    line_no: u64,
    bids: Side,
    asks: Side,
    have_book: bool,
    last_u: Option<i64>,
    last_top: Option<[i64; 4]>,
    scratch_b: Vec<(i64, i64)>,
    scratch_a: Vec<(i64, i64)>,
    symbol: Option<Vec<u8>>,
    out: L1Quotes,
    anomalies: Vec<Anomaly>,
    stats: DecoderStats,
}

impl Default for ObDecoder {
    fn default() -> Self {
        Self::new()
    }
}

const SCALE_F: f64 = SCALE as f64;

impl ObDecoder {
    pub fn new() -> Self {
        Self {
            pending: Vec::new(),
            line_no: 0,
            bids: Side::bids(),
            asks: Side::asks(),
            have_book: false,
            last_u: None,
            last_top: None,
            scratch_b: Vec::with_capacity(512),
            scratch_a: Vec::with_capacity(512),
            symbol: None,
            out: L1Quotes::default(),
            anomalies: Vec::new(),
            stats: DecoderStats::default(),
        }
    }

    /// Decode every complete line of `chunk` (after any partial line kept from the
    /// previous chunk); an incomplete last line is kept for the next call or `finish`.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            match memchr::memchr(b'\n', rest) {
                None => {
                    self.pending.extend_from_slice(rest);
                    return;
                }
                Some(nl) => {
                    let mut line = std::mem::take(&mut self.pending);
                    line.extend_from_slice(&rest[..nl]);
                    self.line(&line);
                    line.clear();
                    self.pending = line; // keep the allocation
                    rest = &rest[nl + 1..];
                }
            }
        }
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', rest) {
            self.line(&rest[start..i]);
            start = i + 1;
        }
        self.pending.extend_from_slice(&rest[start..]);
    }

    /// Decode a last line that had no trailing newline.
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.line(&line);
        }
    }

    /// Quotes emitted since the last call (moves them out: bounded memory for callers
    /// that write as they go).
    pub fn take_quotes(&mut self) -> L1Quotes {
        std::mem::take(&mut self.out)
    }

    pub fn take_anomalies(&mut self) -> Vec<Anomaly> {
        std::mem::take(&mut self.anomalies)
    }

    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Current book depth (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    fn anomaly(&mut self, kind: AnomalyKind, field: &'static str, detail: String) {
        self.anomalies.push(Anomaly {
            line: self.line_no,
            kind,
            field,
            detail,
        });
    }

    fn line(&mut self, raw: &[u8]) {
        self.line_no += 1;
        self.stats.lines += 1;
        let mut end = raw.len();
        while end > 0 && matches!(raw[end - 1], b'\r' | b' ' | b'\t') {
            end -= 1;
        }
        let raw = &raw[..end];
        if raw.iter().all(|c| c.is_ascii_whitespace()) {
            self.stats.blank_lines += 1;
            return;
        }
        self.scratch_b.clear();
        self.scratch_a.clear();
        let mut sb = std::mem::take(&mut self.scratch_b);
        let mut sa = std::mem::take(&mut self.scratch_a);
        let parsed = parse_message(raw, &mut sb, &mut sa);
        match parsed {
            Ok(msg) => self.apply(msg, &sb, &sa),
            Err(e) => self.anomaly(AnomalyKind::Invalid, e.field, e.reason),
        }
        self.scratch_b = sb;
        self.scratch_a = sa;
    }

    fn apply(&mut self, msg: Msg<'_>, bids: &[(i64, i64)], asks: &[(i64, i64)]) {
        let Some(kind) = msg.kind else {
            let what = if msg.kind_raw.is_empty() {
                "missing field".to_string()
            } else {
                format!(
                    "unknown message type {:?} (expected snapshot or delta)",
                    lossy(msg.kind_raw)
                )
            };
            return self.anomaly(AnomalyKind::Invalid, "type", what);
        };
        let Some(u) = msg.u else {
            return self.anomaly(AnomalyKind::Invalid, "data.u", "missing field".into());
        };
        let ts = match (msg.cts, msg.ts) {
            (Some(c), _) => c,
            (None, Some(t)) => {
                self.stats.ts_fallback += 1;
                t
            }
            (None, None) => {
                return self.anomaly(
                    AnomalyKind::Invalid,
                    "cts",
                    "missing field (and no ts)".into(),
                )
            }
        };
        if kind == Kind::Snapshot && !(msg.has_b && msg.has_a) {
            let f = if msg.has_b { "data.a" } else { "data.b" };
            return self.anomaly(
                AnomalyKind::Invalid,
                f,
                "missing field in a snapshot".into(),
            );
        }
        if !msg.symbol.is_empty() {
            match &self.symbol {
                None => self.symbol = Some(msg.symbol.to_vec()),
                Some(s) if s.as_slice() != msg.symbol => {
                    let detail = format!(
                        "symbol {:?} differs from the file's {:?}; the lake keeps one instrument",
                        lossy(msg.symbol),
                        lossy(s)
                    );
                    return self.anomaly(AnomalyKind::Symbol, "data.s", detail);
                }
                Some(_) => {}
            }
        }
        self.stats.messages += 1;
        if kind == Kind::Snapshot || u == 1 {
            if self.have_book {
                self.stats.resets += 1;
            }
            self.stats.snapshots += u64::from(kind == Kind::Snapshot);
            self.stats.deltas += u64::from(kind == Kind::Delta);
            self.bids.reset(bids);
            self.asks.reset(asks);
            self.have_book = true;
        } else {
            self.stats.deltas += 1;
            if !self.have_book {
                return self.anomaly(
                    AnomalyKind::DeltaBeforeSnapshot,
                    "type",
                    format!("delta (u={u}) before any snapshot: no book to apply it to; skipped"),
                );
            }
            if let Some(prev) = self.last_u {
                if u != prev + 1 {
                    let detail = if u > prev {
                        format!(
                            "u gap: expected {}, got {u} ({} update(s) missing); levels they changed may be stale until updated again or the next snapshot",
                            prev + 1,
                            u - prev - 1
                        )
                    } else {
                        format!("u went back: previous {prev}, got {u} (repeated or out-of-order message)")
                    };
                    self.anomaly(AnomalyKind::UGap, "data.u", detail);
                }
            }
            for &(px, sz) in bids {
                if self.bids.apply(px, sz) == Applied::DeleteAbsent {
                    self.stats.delete_absent += 1;
                }
            }
            for &(px, sz) in asks {
                if self.asks.apply(px, sz) == Applied::DeleteAbsent {
                    self.stats.delete_absent += 1;
                }
            }
        }
        self.stats.levels_applied += (bids.len() + asks.len()) as u64;
        self.last_u = Some(u);
        let depth = self.bids.len().max(self.asks.len()) as u64;
        self.stats.max_depth = self.stats.max_depth.max(depth);
        let (Some((bp, bs)), Some((ap, az))) = (self.bids.best(), self.asks.best()) else {
            self.stats.one_sided += 1;
            self.last_top = None;
            return;
        };
        let top = [bp, bs, ap, az];
        if self.last_top == Some(top) {
            return;
        }
        self.last_top = Some(top);
        if bp >= ap {
            let word = if bp > ap { "crossed" } else { "locked" };
            let detail = format!(
                "{word} book: best bid {} >= best ask {} (a stale level; u={u})",
                bp as f64 / SCALE_F,
                ap as f64 / SCALE_F
            );
            self.anomaly(AnomalyKind::Crossed, "data.b", detail);
        }
        let o = &mut self.out;
        o.ts_ms.push(ts);
        o.seq.push(u);
        o.line.push(self.line_no as i64);
        o.bid_px.push(bp as f64 / SCALE_F);
        o.bid_sz.push(bs as f64 / SCALE_F);
        o.ask_px.push(ap as f64 / SCALE_F);
        o.ask_sz.push(az as f64 / SCALE_F);
        self.stats.quotes += 1;
    }
}

fn parse_message<'a>(
    raw: &'a [u8],
    bids: &mut Vec<(i64, i64)>,
    asks: &mut Vec<(i64, i64)>,
) -> Result<Msg<'a>, ScanError> {
    let mut c = Cursor::new(raw);
    let mut m = Msg {
        kind: None,
        kind_raw: b"",
        ts: None,
        cts: None,
        u: None,
        symbol: b"",
        has_b: false,
        has_a: false,
    };
    let mut has_data = false;
    c.expect(b'{', "message")?;
    if !c.eat(b'}') {
        loop {
            let key = c.string("message")?;
            c.expect(b':', "message")?;
            match key {
                b"type" => {
                    let t = c.string("type")?;
                    m.kind_raw = t;
                    m.kind = match t {
                        b"snapshot" => Some(Kind::Snapshot),
                        b"delta" => Some(Kind::Delta),
                        _ => None,
                    };
                }
                b"ts" => m.ts = Some(c.int("ts")?),
                b"cts" => m.cts = Some(c.int("cts")?),
                b"data" => {
                    has_data = true;
                    parse_data(&mut c, &mut m, bids, asks)?
                }
                _ => c.skip_value("message")?,
            }
            if c.eat(b',') {
                continue;
            }
            c.expect(b'}', "message")?;
            break;
        }
    }
    if !c.at_end() {
        return Err(ScanError::new("message", "text after the JSON object"));
    }
    if !has_data {
        return Err(ScanError::new("data", "missing field"));
    }
    Ok(m)
}

fn parse_data<'a>(
    c: &mut Cursor<'a>,
    m: &mut Msg<'a>,
    bids: &mut Vec<(i64, i64)>,
    asks: &mut Vec<(i64, i64)>,
) -> Result<(), ScanError> {
    c.expect(b'{', "data")?;
    if c.eat(b'}') {
        return Ok(());
    }
    loop {
        let key = c.string("data")?;
        c.expect(b':', "data")?;
        match key {
            b"b" => {
                c.levels(bids, "data.b")?;
                m.has_b = true;
            }
            b"a" => {
                c.levels(asks, "data.a")?;
                m.has_a = true;
            }
            b"u" => m.u = Some(c.int("data.u")?),
            b"s" => m.symbol = c.string("data.s")?,
            _ => c.skip_value("data")?,
        }
        if c.eat(b',') {
            continue;
        }
        return c.expect(b'}', "data");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn snap(u: i64, cts: i64, b: &[(&str, &str)], a: &[(&str, &str)]) -> String {
        msg("snapshot", u, cts, b, a)
    }

    fn msg(kind: &str, u: i64, cts: i64, b: &[(&str, &str)], a: &[(&str, &str)]) -> String {
        let lv = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(p, s)| format!("[\"{p}\",\"{s}\"]"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{{\"topic\":\"orderbook.500.BTCUSDT\",\"type\":\"{kind}\",\"ts\":{},\"data\":{{\"s\":\"BTCUSDT\",\"b\":[{}],\"a\":[{}],\"u\":{u},\"seq\":{}}},\"cts\":{cts}}}\n",
            cts + 3,
            lv(b),
            lv(a),
            u * 10
        )
    }

    fn decode(text: &str, chunk: usize) -> ObDecoder {
        let mut d = ObDecoder::new();
        for c in text.as_bytes().chunks(chunk) {
            d.feed(c);
        }
        d.finish();
        d
    }

    #[test]
    fn snapshot_deltas_and_emission_rule() {
        let mut t = snap(
            10,
            1000,
            &[("100.0", "1"), ("99.9", "2")],
            &[("100.1", "3"), ("100.2", "4")],
        );
        t += &msg("delta", 11, 1100, &[("99.8", "5")], &[]); // below top: no quote
        t += &msg("delta", 12, 1200, &[("100.0", "0")], &[]); // top bid deleted
        t += &msg("delta", 13, 1300, &[], &[("100.1", "2.5")]); // top ask size
        let d = decode(&t, 7);
        let q = &d.out;
        assert_eq!(q.ts_ms, vec![1000, 1200, 1300]);
        assert_eq!(q.seq, vec![10, 12, 13]);
        assert_eq!(q.line, vec![1, 3, 4]);
        assert_eq!(q.bid_px, vec![100.0, 99.9, 99.9]);
        assert_eq!(q.bid_sz, vec![1.0, 2.0, 2.0]);
        assert_eq!(q.ask_px, vec![100.1, 100.1, 100.1]);
        assert_eq!(q.ask_sz, vec![3.0, 3.0, 2.5]);
        assert!(d.anomalies.is_empty());
        assert_eq!(d.stats.messages, 4);
        assert_eq!(d.stats.snapshots, 1);
    }

    #[test]
    fn gap_crossed_reset_and_delta_before_snapshot() {
        let mut t = msg("delta", 5, 900, &[("1", "1")], &[]); // line 1: no book yet
        t += &snap(10, 1000, &[("100.0", "1")], &[("100.1", "1")]); // 2
        t += &msg("delta", 12, 1100, &[("100.0", "2")], &[]); // 3: gap 11 missing
        t += &msg("delta", 13, 1200, &[("100.2", "1")], &[]); // 4: crossed
        t += "\n"; // 5 blank
        t += &msg("delta", 1, 1300, &[("50", "1")], &[("51", "1")]); // 6: u == 1 resets
        t += &msg("delta", 2, 1400, &[], &[("51", "0")]); // 7: asks empty: one-sided
        t += "{\"type\":\"delta\",\"data\":{\"u\":3,\"b\":[[\"x\",\"1\"]]}}\n"; // 8: bad number
        let d = decode(&t, 64);
        let kinds: Vec<_> = d.anomalies.iter().map(|a| (a.line, a.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, AnomalyKind::DeltaBeforeSnapshot),
                (3, AnomalyKind::UGap),
                (4, AnomalyKind::Crossed),
                (8, AnomalyKind::Invalid)
            ]
        );
        assert_eq!(d.anomalies[3].field, "data.b");
        assert_eq!(d.out.line, vec![2, 3, 4, 6]);
        assert_eq!(d.out.bid_px[3], 50.0);
        assert_eq!(d.stats.blank_lines, 1);
        assert_eq!(d.stats.resets, 1);
        assert_eq!(d.stats.one_sided, 1);
    }

    #[test]
    fn missing_cts_falls_back_to_ts_and_last_line_without_newline() {
        let t = "{\"type\":\"snapshot\",\"ts\":77,\"data\":{\"s\":\"X\",\"b\":[[\"1\",\"1\"]],\"a\":[[\"2\",\"1\"]],\"u\":4}}";
        let d = decode(t, 1000);
        assert_eq!(d.out.ts_ms, vec![77]);
        assert_eq!(d.stats.ts_fallback, 1);
    }

    /// Random books against a brute-force rebuild (BTreeMap, full recomputation).
    #[test]
    fn equals_brute_force_rebuild() {
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        type Levels = Vec<(String, String)>;
        let mut msgs: Vec<(bool, i64, Levels, Levels)> = Vec::new();
        for i in 0..3000i64 {
            let snapshot = i % 700 == 0;
            let n = if snapshot { 40 } else { (next() % 4) as usize };
            let (mut b, mut a) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let off = (next() % 12) as i64;
                let sz = if !snapshot && next() % 3 == 0 {
                    0
                } else {
                    next() % 50 + 1
                };
                let size = if sz == 0 {
                    "0".to_string()
                } else {
                    format!("0.{sz:03}")
                };
                if next() % 2 == 0 {
                    b.push((format!("{}.{}", 1000 - off / 10, off % 10), size));
                } else {
                    a.push((format!("{}.{}", 1001 + off / 10, off % 10), size));
                }
            }
            msgs.push((snapshot, 1000 + i, b, a));
        }
        let mut text = String::new();
        for (k, (snapshot, cts, b, a)) in msgs.iter().enumerate() {
            let bb: Vec<(&str, &str)> = b.iter().map(|(p, s)| (p.as_str(), s.as_str())).collect();
            let aa: Vec<(&str, &str)> = a.iter().map(|(p, s)| (p.as_str(), s.as_str())).collect();
            let kind = if *snapshot { "snapshot" } else { "delta" };
            text += &msg(kind, 100 + k as i64, *cts, &bb, &aa);
        }
        let d = decode(&text, 4096);
        let px = |s: &str| s.parse::<f64>().unwrap();
        let mut bids: BTreeMap<i64, f64> = BTreeMap::new(); // key: price in 0.1 units
        let mut asks: BTreeMap<i64, f64> = BTreeMap::new();
        let mut expect: Vec<(i64, f64, f64, f64, f64)> = Vec::new();
        let mut last = None;
        for (snapshot, cts, b, a) in &msgs {
            if *snapshot {
                bids.clear();
                asks.clear();
            }
            for (book, lv) in [(&mut bids, b), (&mut asks, a)] {
                for (p, s) in lv {
                    let key = (px(p) * 10.0).round() as i64;
                    if px(s) == 0.0 {
                        book.remove(&key);
                    } else {
                        book.insert(key, px(s));
                    }
                }
            }
            match (bids.iter().next_back(), asks.iter().next()) {
                (Some((&bp, &bs)), Some((&ap, &az))) => {
                    let top = (bp as f64 / 10.0, bs, ap as f64 / 10.0, az);
                    if last != Some(top) {
                        last = Some(top);
                        expect.push((*cts, top.0, top.1, top.2, top.3));
                    }
                }
                _ => last = None,
            }
        }
        let got: Vec<_> = (0..d.out.len())
            .map(|i| {
                (
                    d.out.ts_ms[i],
                    d.out.bid_px[i],
                    d.out.bid_sz[i],
                    d.out.ask_px[i],
                    d.out.ask_sz[i],
                )
            })
            .collect();
        assert!(expect.len() > 300, "{}", expect.len());
        assert_eq!(got, expect);
    }
}
