//! Fast path for the hot tick CSV formats (Bybit trade archives, Binance trades and
//! bookTicker exports): the decompressed buffer is cut at line boundaries and the pieces are
//! parsed on several threads straight into typed columns.
//!
//! The fast path only ever accepts a *clean* file. Anything irregular (a quote character, a
//! `\r`, a blank line, a wrong field count, an empty or unparsable field, a second symbol, a
//! timestamp outside 1990-2100, an unknown side word) makes it decline with the first line
//! and reason ([`Declined`]); the caller then runs the general parser, which reports every
//! bad field as `file:line:field`. So the error reporting lives in one place and this
//! module cannot disagree with it about what a bad row is.
//!
//! Exactness pitfalls handled here:
//! * Timestamps in fractional epoch seconds (`1748736000.0283`) are floored to the
//!   millisecond with integer arithmetic; going through an `f64` would put `.029` one
//!   millisecond early.
//! * Prices and sizes must be the very same doubles a correctly rounding parser produces
//!   (the general path uses Arrow's). For up to 15 significant digits the value is
//!   `mantissa / 10^k` with both operands exact in an `f64`, and one IEEE division is then
//!   correctly rounded (Clinger's fast path); longer mantissas go through Rust's correctly
//!   rounding `f64::from_str`.

use memchr::{memchr, memchr2, memchr_iter};

/// Plausible epoch-ms range (1990-01-01 .. 2100-01-01), as in `at_core.ingest.timestamps`.
pub const MIN_MS: i64 = 631_152_000_000;
pub const MAX_MS: i64 = 4_102_444_800_000;

const POW10F: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// How one CSV field is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Epoch seconds with an optional fraction (at most 9 digits) -> floored epoch ms.
    TsSeconds,
    /// Integer epoch milliseconds.
    TsMillis,
    /// Non-negative decimal number -> `f64` (correctly rounded).
    F64,
    /// Non-negative integer (at most 18 digits) -> `i64`.
    I64,
    /// Text kept as is (non-empty, valid UTF-8).
    Str,
    /// `buy` / `sell` in any case -> +1 / -1 (the taker's side).
    Side,
    /// Binance `is_buyer_maker`: `true`/`1` -> -1 (the aggressor sold), `false`/`0` -> +1.
    MakerFlag,
    /// Must be the same text on every row (the symbol); returned once.
    Same,
}

impl FieldKind {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ts_s" => Self::TsSeconds,
            "ts_ms" => Self::TsMillis,
            "f64" => Self::F64,
            "i64" => Self::I64,
            "str" => Self::Str,
            "side" => Self::Side,
            "maker" => Self::MakerFlag,
            "same" => Self::Same,
            _ => return None,
        })
    }
}

/// One parsed column, in the order of the field specs.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    I64(Vec<i64>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    /// Arrow string layout: `offsets` has rows + 1 entries into `data`.
    Str {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    /// The single value of a [`FieldKind::Same`] field (empty when there are no rows).
    Same(Vec<u8>),
}

/// Why the fast path declined a file: the first offending physical line (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined {
    pub line: u64,
    pub reason: String,
}

/// The parsed data rows: row `i` is physical line `first_line + i` (no blank lines).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub rows: usize,
    pub columns: Vec<Column>,
}

struct Piece {
    rows: usize,
    cols: Vec<Column>,
}

/// Parse `data` (the bytes after the header line; `first_line` is the physical line number
/// of its first byte) whose lines have exactly `ncols` fields, reading `fields` (index,
/// kind) on up to `threads` threads.
pub fn parse(
    data: &[u8],
    first_line: u64,
    ncols: usize,
    fields: &[(usize, FieldKind)],
    threads: usize,
) -> Result<Parsed, Declined> {
    if ncols == 0 || fields.iter().any(|&(i, _)| i >= ncols) {
        return Err(Declined {
            line: first_line,
            reason: "field index beyond the header".into(),
        });
    }
    let pieces = split(data, threads.max(1));
    let results: Vec<Result<Piece, (u64, String)>> = if pieces.len() == 1 {
        vec![parse_piece(pieces[0], ncols, fields)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = pieces
                .iter()
                .map(|p| s.spawn(move || parse_piece(p, ncols, fields)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("csv worker panicked"))
                .collect()
        })
    };
    // line numbers: a piece starts where the previous one ended
    let mut base = first_line;
    let mut ok = Vec::with_capacity(results.len());
    for res in results {
        match res {
            Ok(p) => {
                base += p.rows as u64;
                ok.push(p);
            }
            Err((local, reason)) => {
                return Err(Declined {
                    line: base + local,
                    reason,
                })
            }
        }
    }
    merge(ok, first_line)
}

/// Cut `data` into about `n` pieces, each ending just after a newline (the last may not).
fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    const MIN_PIECE: usize = 1 << 20;
    let n = n.min(data.len() / MIN_PIECE).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = (data.len() * k / n).max(start);
        match memchr(b'\n', &data[target..]) {
            Some(p) => {
                let end = target + p + 1;
                out.push(&data[start..end]);
                start = end;
            }
            None => break,
        }
    }
    out.push(&data[start..]);
    out
}

fn merge(mut pieces: Vec<Piece>, first_line: u64) -> Result<Parsed, Declined> {
    let rows: usize = pieces.iter().map(|p| p.rows).sum();
    let mut first = pieces.remove(0);
    let mut line = first_line + first.rows as u64;
    for p in pieces {
        for (dst, src) in first.cols.iter_mut().zip(p.cols) {
            match (dst, src) {
                (Column::I64(a), Column::I64(b)) => a.extend_from_slice(&b),
                (Column::F64(a), Column::F64(b)) => a.extend_from_slice(&b),
                (Column::I8(a), Column::I8(b)) => a.extend_from_slice(&b),
                (
                    Column::Str { offsets, data },
                    Column::Str {
                        offsets: o2,
                        data: d2,
                    },
                ) => {
                    let shift = data.len() as i64;
                    if shift + d2.len() as i64 > i32::MAX as i64 {
                        return Err(Declined {
                            line,
                            reason: "text column larger than 2 GiB".into(),
                        });
                    }
                    offsets.extend(o2[1..].iter().map(|&o| (o as i64 + shift) as i32));
                    data.extend_from_slice(&d2);
                }
                (Column::Same(a), Column::Same(b)) => {
                    if a.is_empty() {
                        *a = b;
                    } else if !b.is_empty() && *a != b {
                        return Err(Declined {
                            line,
                            reason: "more than one value in a single-value column".into(),
                        });
                    }
                }
                _ => unreachable!("pieces share the field specs"),
            }
        }
        line += p.rows as u64;
    }
    Ok(Parsed {
        rows,
        columns: first.cols,
    })
}

fn parse_piece(
    data: &[u8],
    ncols: usize,
    fields: &[(usize, FieldKind)],
) -> Result<Piece, (u64, String)> {
    let est = memchr_iter(b'\n', data).count() + 1;
    let mut cols: Vec<Column> = fields
        .iter()
        .map(|&(_, k)| match k {
            FieldKind::TsSeconds | FieldKind::TsMillis | FieldKind::I64 => {
                Column::I64(Vec::with_capacity(est))
            }
            FieldKind::F64 => Column::F64(Vec::with_capacity(est)),
            FieldKind::Side | FieldKind::MakerFlag => Column::I8(Vec::with_capacity(est)),
            FieldKind::Str => {
                let mut offsets = Vec::with_capacity(est + 1);
                offsets.push(0i32);
                Column::Str {
                    offsets,
                    data: Vec::with_capacity(est * 40),
                }
            }
            FieldKind::Same => Column::Same(Vec::new()),
        })
        .collect();
    // which spec reads each column index (usize::MAX = unused)
    let mut want = vec![usize::MAX; ncols];
    for (k, &(i, _)) in fields.iter().enumerate() {
        if want[i] != usize::MAX {
            return Err((0, "a column is read twice".into()));
        }
        want[i] = k;
    }
    // quotes and carriage returns (a line break to CSV readers) are rare: one SIMD pass each
    if let Some(p) = memchr2(b'"', b'\r', data) {
        let line = memchr_iter(b'\n', &data[..p]).count() as u64;
        return Err((line, "quoted field or carriage return".into()));
    }
    let mut starts = vec![0usize; ncols + 1];
    let mut rows = 0usize;
    let mut nf = 0usize;
    let mut line_start = 0usize;
    // Field boundaries: 8 bytes at a time (SWAR), because a separator comes every few bytes
    // and a per-line search would pay its setup cost ten times per line.
    let mut base = 0usize;
    while base < data.len() {
        let mut mask = match data.get(base..base + 8) {
            Some(w) => separators(u64::from_le_bytes(w.try_into().expect("8 bytes"))),
            None => data[base..]
                .iter()
                .enumerate()
                .filter(|(_, &c)| c == b',' || c == b'\n')
                .fold(0u64, |m, (k, _)| m | 0x80 << (8 * k)),
        };
        while mask != 0 {
            let p = base + (mask.trailing_zeros() / 8) as usize;
            mask &= mask - 1;
            if data[p] == b',' {
                nf += 1;
                if nf >= ncols {
                    return Err((rows as u64, format!("more than {ncols} fields")));
                }
                starts[nf] = p + 1;
            } else {
                end_line(
                    data,
                    line_start,
                    p,
                    nf,
                    &mut starts,
                    fields,
                    &mut cols,
                    rows,
                )?;
                rows += 1;
                nf = 0;
                line_start = p + 1;
            }
        }
        base += 8;
    }
    if line_start < data.len() {
        // last line without a newline
        end_line(
            data,
            line_start,
            data.len(),
            nf,
            &mut starts,
            fields,
            &mut cols,
            rows,
        )?;
        rows += 1;
    }
    Ok(Piece { rows, cols })
}

/// High bit set in every byte of `w` that is `,` or `\n` (exact: no carries across bytes).
#[inline]
fn separators(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    #[inline]
    fn zero_bytes(x: u64) -> u64 {
        !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
    }
    zero_bytes(w ^ (0x0101_0101_0101_0101 * b',' as u64))
        | zero_bytes(w ^ (0x0101_0101_0101_0101 * b'\n' as u64))
}

/// Read the fields of the line `data[line_start..end]` whose commas are in `starts[1..=nf]`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn end_line(
    data: &[u8],
    line_start: usize,
    end: usize,
    nf: usize,
    starts: &mut [usize],
    fields: &[(usize, FieldKind)],
    cols: &mut [Column],
    row: usize,
) -> Result<(), (u64, String)> {
    let ncols = starts.len() - 1;
    let local = row as u64;
    if end == line_start {
        return Err((local, "blank line".into()));
    }
    if nf + 1 != ncols {
        return Err((local, format!("{} fields, expected {ncols}", nf + 1)));
    }
    starts[0] = line_start;
    starts[ncols] = end + 1;
    for (k, &(i, kind)) in fields.iter().enumerate() {
        let f = &data[starts[i]..starts[i + 1] - 1];
        if f.is_empty() {
            return Err((local, format!("empty field {i}")));
        }
        let bad = |why: &str| (local, format!("field {i}: {why}"));
        match (&mut cols[k], kind) {
            (Column::I64(v), FieldKind::TsSeconds) => {
                let ms = seconds_to_ms(f).ok_or_else(|| bad("not epoch seconds"))?;
                if !(MIN_MS..MAX_MS).contains(&ms) {
                    return Err(bad("timestamp out of range"));
                }
                v.push(ms);
            }
            (Column::I64(v), FieldKind::TsMillis) => {
                let ms = uint(f).ok_or_else(|| bad("not epoch ms"))?;
                if !(MIN_MS..MAX_MS).contains(&ms) {
                    return Err(bad("timestamp out of range"));
                }
                v.push(ms);
            }
            (Column::I64(v), FieldKind::I64) => {
                v.push(uint(f).ok_or_else(|| bad("not an integer"))?)
            }
            (Column::F64(v), FieldKind::F64) => {
                v.push(decimal_f64(f).ok_or_else(|| bad("not a decimal"))?)
            }
            (Column::I8(v), FieldKind::Side) => v.push(if f.eq_ignore_ascii_case(b"buy") {
                1
            } else if f.eq_ignore_ascii_case(b"sell") {
                -1
            } else {
                return Err(bad("not buy/sell"));
            }),
            (Column::I8(v), FieldKind::MakerFlag) => {
                v.push(if f.eq_ignore_ascii_case(b"true") || f == b"1" {
                    -1
                } else if f.eq_ignore_ascii_case(b"false") || f == b"0" {
                    1
                } else {
                    return Err(bad("not true/false"));
                })
            }
            (Column::Str { offsets, data }, FieldKind::Str) => {
                if !f.is_ascii() && std::str::from_utf8(f).is_err() {
                    return Err(bad("invalid UTF-8"));
                }
                data.extend_from_slice(f);
                if data.len() > i32::MAX as usize {
                    return Err(bad("text column larger than 2 GiB"));
                }
                offsets.push(data.len() as i32);
            }
            (Column::Same(v), FieldKind::Same) => {
                if v.is_empty() {
                    if !f.is_ascii() && std::str::from_utf8(f).is_err() {
                        return Err(bad("invalid UTF-8"));
                    }
                    v.extend_from_slice(f);
                } else if v.as_slice() != f {
                    return Err(bad("a second symbol"));
                }
            }
            _ => unreachable!("column built from its kind"),
        }
    }
    Ok(())
}

/// Digits only (at most 18, so no overflow) -> value.
#[inline]
fn uint(f: &[u8]) -> Option<i64> {
    if f.is_empty() || f.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in f {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as i64;
    }
    Some(v)
}

/// `SSSSSSSSSS[.fffffffff]` -> floor(ms). At most 12 integer and 9 fraction digits, a point
/// must have digits on both sides.
#[inline]
fn seconds_to_ms(f: &[u8]) -> Option<i64> {
    let (int, frac) = match memchr(b'.', f) {
        Some(p) => (&f[..p], Some(&f[p + 1..])),
        None => (f, None),
    };
    if int.len() > 12 {
        return None;
    }
    let mut ms = uint(int)? * 1000;
    if let Some(fr) = frac {
        if fr.is_empty() || fr.len() > 9 {
            return None;
        }
        let mut scale = 100;
        for (j, &c) in fr.iter().enumerate() {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            if j < 3 {
                ms += d as i64 * scale;
                scale /= 10;
            }
        }
    }
    Some(ms)
}

/// `digits[.digits]` -> the correctly rounded `f64`.
#[inline]
fn decimal_f64(f: &[u8]) -> Option<f64> {
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for (j, &c) in f.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            if digits < 19 {
                m = m * 10 + d as u64;
            }
            digits += 1;
        } else if c == b'.' && frac.is_none() && j > 0 {
            frac = Some(j + 1);
        } else {
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    let k = match frac {
        Some(p) if p == f.len() => return None, // "5." is left to the general parser
        Some(p) => f.len() - p,
        None => 0,
    };
    if digits <= 15 && k < POW10F.len() {
        // m < 10^15 < 2^53 and 10^k are exact: one division is correctly rounded
        return Some(m as f64 / POW10F[k]);
    }
    std::str::from_utf8(f).ok()?.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(spec: &[(usize, &str)]) -> Vec<(usize, FieldKind)> {
        spec.iter()
            .map(|&(i, k)| (i, FieldKind::from_name(k).unwrap()))
            .collect()
    }

    #[test]
    fn seconds_are_floored_exactly() {
        assert_eq!(seconds_to_ms(b"1748736000.0283"), Some(1_748_736_000_028));
        assert_eq!(seconds_to_ms(b"1748736000.029"), Some(1_748_736_000_029));
        assert_eq!(
            seconds_to_ms(b"1748736000.999999999"),
            Some(1_748_736_000_999)
        );
        assert_eq!(seconds_to_ms(b"1748736001"), Some(1_748_736_001_000));
        assert_eq!(seconds_to_ms(b"1748736001.5"), Some(1_748_736_001_500));
        assert_eq!(seconds_to_ms(b"1748736001."), None);
        assert_eq!(seconds_to_ms(b"1748736001.1234567890"), None);
        assert_eq!(seconds_to_ms(b"-1748736001"), None);
        assert_eq!(seconds_to_ms(b"1e9"), None);
    }

    #[test]
    fn decimals_match_the_correctly_rounded_parse() {
        for s in [
            "0.1",
            "0.003",
            "104500",
            "104499.9",
            "63943.90",
            "1.719",
            "0.000001",
            "123456789.123",
            "9007199254740993",
            "0.30000000000000004",
            "12345678901234567890.5",
        ] {
            let want: f64 = s.parse().unwrap();
            assert_eq!(
                decimal_f64(s.as_bytes()).map(f64::to_bits),
                Some(want.to_bits()),
                "{s}"
            );
        }
        for s in ["", ".5", "5.", "1e5", "-1", "+1", "1.2.3", "nan", "1 "] {
            assert_eq!(decimal_f64(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn bybit_rows_parse_on_several_threads() {
        let mut text = String::new();
        for i in 0..50_000 {
            let side = if i % 3 == 0 { "Buy" } else { "Sell" };
            text.push_str(&format!(
                "1748736000.{:04},BTCUSDT,{side},0.{:03},{}.5,PlusTick,id-{i},1e9,0.1,5\n",
                i % 10_000,
                i % 1000 + 1,
                100_000 + i
            ));
        }
        let spec = kinds(&[
            (0, "ts_s"),
            (1, "same"),
            (2, "side"),
            (3, "f64"),
            (4, "f64"),
            (6, "str"),
        ]);
        let one = parse(text.as_bytes(), 2, 10, &spec, 1).unwrap();
        let four = parse(text.as_bytes(), 2, 10, &spec, 4).unwrap();
        assert_eq!(one, four);
        assert_eq!(one.rows, 50_000);
        let Column::I64(ts) = &one.columns[0] else {
            panic!()
        };
        assert_eq!(ts[1], 1_748_736_000_000);
        assert_eq!(ts[9_999], 1_748_736_000_999);
        assert_eq!(one.columns[1], Column::Same(b"BTCUSDT".to_vec()));
        let Column::I8(side) = &one.columns[2] else {
            panic!()
        };
        assert_eq!(&side[..3], &[1, -1, -1]);
        let Column::F64(px) = &one.columns[4] else {
            panic!()
        };
        assert_eq!(px[7], 100_007.5);
        let Column::Str { offsets, data } = &one.columns[5] else {
            panic!()
        };
        assert_eq!(offsets.len(), 50_001);
        let n = 49_999;
        let s = &data[offsets[n] as usize..offsets[n + 1] as usize];
        assert_eq!(s, b"id-49999");
    }

    #[test]
    fn irregular_lines_are_declined_with_their_line() {
        let spec = kinds(&[(0, "ts_ms"), (1, "f64")]);
        let ok = b"1700000000000,1.5\n1700000000001,2\n";
        assert_eq!(parse(ok, 2, 2, &spec, 1).unwrap().rows, 2);
        let no_newline = b"1700000000000,1.5\n1700000000001,2";
        assert_eq!(parse(no_newline, 2, 2, &spec, 1).unwrap().rows, 2);
        for (bad, line) in [
            (&b"1700000000000,1.5\n\n1700000000001,2\n"[..], 3),
            (b"1700000000000,1.5\n1700000000001,\"2\"\n", 3),
            (b"1700000000000,1.5\r\n", 2),
            (b"1700000000000,1.5,3\n", 2),
            (b"1700000000000\n", 2),
            (b"1700000000000,\n", 2),
            (b"1700000000000,x\n", 2),
            (b"17000000000,1\n", 2),
        ] {
            let err = parse(bad, 2, 2, &spec, 1).unwrap_err();
            assert_eq!(
                err.line,
                line,
                "{:?}: {}",
                String::from_utf8_lossy(bad),
                err.reason
            );
        }
        let sym = kinds(&[(0, "same")]);
        assert_eq!(parse(b"A\nA\nB\n", 2, 1, &sym, 1).unwrap_err().line, 4);
        let side = kinds(&[(0, "side"), (1, "maker")]);
        let p = parse(b"BUY,True\nsell,0\n", 2, 2, &side, 1).unwrap();
        assert_eq!(
            p.columns,
            vec![Column::I8(vec![1, -1]), Column::I8(vec![-1, 1])]
        );
        assert!(parse(b"hold,true\n", 2, 2, &side, 1).is_err());
    }
}
