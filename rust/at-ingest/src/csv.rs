//! Fast path for the hot tick CSV formats (Bybit trade archives, Binance trades and
//! bookTicker exports): the decompressed buffer is cut at line boundaries and the pieces are
//! parsed on several threads straight into typed columns.
//!
//! Two passes, each parallel over the pieces, and no single-threaded merge:
//! * [`layout`] counts each piece's lines (so every piece knows where its rows start in the
//!   output columns), looks for quotes and carriage returns, and samples the width of each
//!   text field (Bybit trade ids are fixed-width UUIDs);
//! * [`fill`] lexes every line field by field (a read field is parsed where it stands, a
//!   skipped one is jumped over 8 bytes at a time) into the piece's own slices of columns
//!   the caller allocated (the Python binding uses NumPy arrays: NumPy backs big arrays with
//!   huge pages, and first-touching ~200 MB of 4 KiB pages costs more than the parse).
//!   With a fixed text width each piece also writes its text straight into its final place;
//!   otherwise the pieces' text is concatenated at the end.
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

/// The first pass over a file: where its pieces are, how many rows each holds, and the
/// byte width of each text field when a sample of every piece shows a fixed width (Bybit
/// trade ids are UUIDs), so that the text can be written straight into its final place.
#[derive(Debug, Clone)]
pub struct Layout {
    first_line: u64,
    ncols: usize,
    fields: Vec<(usize, FieldKind)>,
    pieces: Vec<std::ops::Range<usize>>,
    rows: Vec<usize>,
    widths: Vec<Option<usize>>,
}

impl Layout {
    /// Data rows in the file.
    pub fn rows(&self) -> usize {
        self.rows.iter().sum()
    }

    /// The expected text length of field `k` (a [`FieldKind::Str`]): the size to give its
    /// `text` buffer in [`fill`] (0 when the width is not fixed; [`fill`] then allocates).
    pub fn text_len(&self, k: usize) -> usize {
        self.widths[k].map_or(0, |w| w * self.rows())
    }
}

/// Where [`fill`] writes a field: slices of `rows` items (`offsets`: `rows + 1`, `text`:
/// [`Layout::text_len`] bytes), nothing for a [`FieldKind::Same`] field.
pub enum Out<'a> {
    I64(&'a mut [i64]),
    F64(&'a mut [f64]),
    I8(&'a mut [i8]),
    Str {
        offsets: &'a mut [i32],
        text: &'a mut [u8],
    },
    Same,
}

/// What [`fill`] could not write into the given slices, per field: the value of a
/// [`FieldKind::Same`] field, and the whole text of a [`FieldKind::Str`] field whose
/// length differed from [`Layout::text_len`] (its `offsets` then index this text).
#[derive(Debug, Default)]
pub struct Filled {
    pub same: Vec<Option<Vec<u8>>>,
    pub text: Vec<Option<Vec<u8>>>,
}

/// Where one piece's rows go: its own sub-slices of the output columns, one variant per
/// field kind (one dispatch per field).
enum Sink<'a> {
    TsSeconds(&'a mut [i64]),
    TsMillis(&'a mut [i64]),
    I64(&'a mut [i64]),
    F64(&'a mut [f64]),
    Side(&'a mut [i8]),
    MakerFlag(&'a mut [i8]),
    /// Row end offsets (already global), the piece's region of the text buffer (starting
    /// at byte `base` of it), how much of it is used, and what did not fit.
    Str {
        ends: &'a mut [i32],
        region: &'a mut [u8],
        base: usize,
        used: usize,
        spill: Vec<u8>,
    },
    Same(Vec<u8>),
}

/// A decline found inside a piece: row within the piece and why.
type PieceError = (u64, String);

/// Parse `data` (the bytes after the header line; `first_line` is the physical line number
/// of its first byte) whose lines have exactly `ncols` fields, reading `fields` (index,
/// kind) on up to `threads` threads, into newly allocated columns.
pub fn parse(
    data: &[u8],
    first_line: u64,
    ncols: usize,
    fields: &[(usize, FieldKind)],
    threads: usize,
) -> Result<Parsed, Declined> {
    let lay = layout(data, first_line, ncols, fields, threads)?;
    let rows = lay.rows();
    let mut cols: Vec<Column> = fields
        .iter()
        .enumerate()
        .map(|(k, &(_, kind))| match kind {
            FieldKind::TsSeconds | FieldKind::TsMillis | FieldKind::I64 => {
                Column::I64(vec![0; rows])
            }
            FieldKind::F64 => Column::F64(vec![0.0; rows]),
            FieldKind::Side | FieldKind::MakerFlag => Column::I8(vec![0; rows]),
            FieldKind::Str => Column::Str {
                offsets: vec![0; rows + 1],
                data: vec![0; lay.text_len(k)],
            },
            FieldKind::Same => Column::Same(Vec::new()),
        })
        .collect();
    let outs = cols
        .iter_mut()
        .map(|c| match c {
            Column::I64(v) => Out::I64(v),
            Column::F64(v) => Out::F64(v),
            Column::I8(v) => Out::I8(v),
            Column::Str { offsets, data } => Out::Str {
                offsets,
                text: data,
            },
            Column::Same(_) => Out::Same,
        })
        .collect();
    let filled = fill(data, &lay, outs)?;
    for ((c, same), text) in cols.iter_mut().zip(filled.same).zip(filled.text) {
        match c {
            Column::Same(v) => *v = same.unwrap_or_default(),
            Column::Str { data, .. } => {
                if let Some(t) = text {
                    *data = t;
                }
            }
            _ => {}
        }
    }
    Ok(Parsed {
        rows,
        columns: cols,
    })
}

/// First pass (parallel): cut `data` into pieces at line boundaries, count their lines,
/// look for quotes and carriage returns (one SIMD search) and sample text widths.
pub fn layout(
    data: &[u8],
    first_line: u64,
    ncols: usize,
    fields: &[(usize, FieldKind)],
    threads: usize,
) -> Result<Layout, Declined> {
    let declined = |reason: &str| Declined {
        line: first_line,
        reason: reason.into(),
    };
    if ncols == 0 || fields.iter().any(|&(i, _)| i >= ncols) {
        return Err(declined("field index beyond the header"));
    }
    let mut seen = vec![false; ncols];
    for &(i, _) in fields {
        if std::mem::replace(&mut seen[i], true) {
            return Err(declined("a column is read twice"));
        }
    }
    let pieces = split(data, threads.max(1));
    let texts: Vec<usize> = fields
        .iter()
        .filter(|f| f.1 == FieldKind::Str)
        .map(|f| f.0)
        .collect();
    let counted = run(
        &pieces,
        |p| -> Result<(usize, Vec<Option<usize>>), PieceError> {
            let p = &data[p.clone()];
            if let Some(q) = memchr2(b'"', b'\r', p) {
                let line = memchr_iter(b'\n', &p[..q]).count() as u64;
                return Err((line, "quoted field or carriage return".into()));
            }
            let rows =
                memchr_iter(b'\n', p).count() + usize::from(p.last().is_some_and(|&c| c != b'\n'));
            let widths = texts.iter().map(|&i| sample_width(p, i)).collect();
            Ok((rows, widths))
        },
    );
    let mut rows = Vec::with_capacity(pieces.len());
    let mut widths: Vec<Option<usize>> = Vec::new();
    let mut base = first_line;
    for r in counted {
        match r {
            Ok((n, w)) => {
                if rows.is_empty() {
                    widths = w;
                } else {
                    for (a, b) in widths.iter_mut().zip(w) {
                        if *a != b {
                            *a = None;
                        }
                    }
                }
                rows.push(n);
                base += n as u64;
            }
            Err((local, reason)) => {
                return Err(Declined {
                    line: base + local,
                    reason,
                })
            }
        }
    }
    let mut w = widths.into_iter();
    let widths = fields
        .iter()
        .map(|f| {
            if f.1 == FieldKind::Str {
                w.next().flatten()
            } else {
                None
            }
        })
        .collect();
    Ok(Layout {
        first_line,
        ncols,
        fields: fields.to_vec(),
        pieces,
        rows,
        widths,
    })
}

/// The width of field `i` if it is the same on the first lines of `p` (a sample).
fn sample_width(p: &[u8], i: usize) -> Option<usize> {
    const SAMPLE: usize = 64;
    let mut width = None;
    let mut pos = 0;
    for _ in 0..SAMPLE {
        if pos >= p.len() {
            break;
        }
        let mut s = pos;
        for _ in 0..i {
            s = next_separator(p, s);
            if p.get(s) != Some(&b',') {
                return None;
            }
            s += 1;
        }
        let w = next_separator(p, s) - s;
        if w == 0 || width.is_some_and(|x| x != w) {
            return None;
        }
        width = Some(w);
        pos = match memchr(b'\n', &p[s..]) {
            Some(n) => s + n + 1,
            None => p.len(),
        };
    }
    width
}

/// Second pass (parallel): parse every line of the pieces of `lay` into `outs` (one per
/// field, in order, sized as [`Out`] says).
pub fn fill(data: &[u8], lay: &Layout, mut outs: Vec<Out>) -> Result<Filled, Declined> {
    let fields = &lay.fields;
    assert_eq!(outs.len(), fields.len(), "one output per field");
    let rows = lay.rows();
    // which spec reads each column index (None = skipped)
    let mut plan: Vec<Option<usize>> = vec![None; lay.ncols];
    for (k, &(i, _)) in fields.iter().enumerate() {
        plan[i] = Some(k);
    }
    let kinds: Vec<FieldKind> = fields.iter().map(|&(_, k)| k).collect();
    // cut every output into one sub-slice per piece
    let mut sinks: Vec<Vec<Sink>> = lay.pieces.iter().map(|_| Vec::new()).collect();
    for (k, out) in outs.iter_mut().enumerate() {
        let mut base = 0usize;
        let mut rest: Out = std::mem::replace(out, Out::Same);
        let width = lay.widths[k].unwrap_or(0);
        if let Out::Str { offsets, text } = &mut rest {
            assert_eq!(offsets.len(), rows + 1, "offsets: rows + 1");
            assert_eq!(text.len(), lay.text_len(k), "text: Layout::text_len");
            offsets[0] = 0;
            let tail = std::mem::take(offsets);
            *offsets = &mut tail[1..];
        }
        for ((sink, &n), piece) in sinks.iter_mut().zip(&lay.rows).zip(&lay.pieces) {
            sink.push(match (&mut rest, kinds[k]) {
                (Out::I64(v), FieldKind::TsSeconds) => Sink::TsSeconds(take(v, n)),
                (Out::I64(v), FieldKind::TsMillis) => Sink::TsMillis(take(v, n)),
                (Out::I64(v), FieldKind::I64) => Sink::I64(take(v, n)),
                (Out::F64(v), FieldKind::F64) => Sink::F64(take(v, n)),
                (Out::I8(v), FieldKind::Side) => Sink::Side(take(v, n)),
                (Out::I8(v), FieldKind::MakerFlag) => Sink::MakerFlag(take(v, n)),
                (Out::Str { offsets, text }, FieldKind::Str) => {
                    let region = take(text, width * n);
                    let s = Sink::Str {
                        ends: take(offsets, n),
                        region,
                        base,
                        used: 0,
                        // without a fixed width all text goes here (capacity that is never
                        // touched costs address space only)
                        spill: Vec::with_capacity(if width == 0 { piece.len() } else { 0 }),
                    };
                    base += width * n;
                    s
                }
                (Out::Same, FieldKind::Same) => Sink::Same(Vec::new()),
                _ => panic!("output {k} does not match its field kind {:?}", kinds[k]),
            });
        }
    }
    let pieces: Vec<&[u8]> = lay.pieces.iter().map(|r| &data[r.clone()]).collect();
    let parsed = run_with(&pieces, &mut sinks, |p, sink| parse_piece(p, &plan, sink));
    let mut base = lay.first_line;
    for (r, &n) in parsed.into_iter().zip(&lay.rows) {
        if let Err((local, reason)) = r {
            return Err(Declined {
                line: base + local,
                reason,
            });
        }
        base += n as u64;
    }
    let mut filled = Filled {
        same: vec![None; fields.len()],
        text: vec![None; fields.len()],
    };
    for (k, kind) in kinds.iter().enumerate() {
        match kind {
            FieldKind::Same => {
                let mut line = lay.first_line;
                let mut value: Vec<u8> = Vec::new();
                for (sink, &n) in sinks.iter_mut().zip(&lay.rows) {
                    if let Sink::Same(v) = &mut sink[k] {
                        if value.is_empty() {
                            value = std::mem::take(v);
                        } else if !v.is_empty() && *v != value {
                            return Err(Declined {
                                line,
                                reason: "more than one value in a single-value column".into(),
                            });
                        }
                    }
                    line += n as u64;
                }
                filled.same[k] = Some(value);
            }
            FieldKind::Str => filled.text[k] = gather_text(&mut sinks, k, lay.first_line)?,
            _ => {}
        }
    }
    Ok(filled)
}

/// `None` when every piece's text filled its region exactly (the common case of fixed-width
/// ids); otherwise the whole text, with the row offsets moved to index it.
fn gather_text(
    sinks: &mut [Vec<Sink>],
    k: usize,
    first_line: u64,
) -> Result<Option<Vec<u8>>, Declined> {
    let exact = sinks.iter().all(|s| match &s[k] {
        Sink::Str {
            region,
            used,
            spill,
            ..
        } => *used == region.len() && spill.is_empty(),
        _ => unreachable!("str sink"),
    });
    if exact {
        return Ok(None);
    }
    let total: usize = sinks
        .iter()
        .map(|s| match &s[k] {
            Sink::Str { used, spill, .. } => used + spill.len(),
            _ => unreachable!("str sink"),
        })
        .sum();
    if total > i32::MAX as usize {
        return Err(Declined {
            line: first_line,
            reason: "text column larger than 2 GiB".into(),
        });
    }
    let mut text = Vec::with_capacity(total);
    for s in sinks.iter_mut() {
        if let Sink::Str {
            ends,
            region,
            base,
            used,
            spill,
        } = &mut s[k]
        {
            let shift = text.len() as i64 - *base as i64;
            if shift != 0 {
                ends.iter_mut()
                    .for_each(|e| *e = (*e as i64 + shift) as i32);
            }
            text.extend_from_slice(&region[..*used]);
            text.extend_from_slice(spill);
        }
    }
    Ok(Some(text))
}

/// The first `n` items of `*rest`; `*rest` keeps the remainder.
fn take<'a, T>(rest: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    let (head, tail) = std::mem::take(rest).split_at_mut(n);
    *rest = tail;
    head
}

/// `f(piece)` for every piece, on its own thread when there are several.
fn run<T: Send>(
    pieces: &[std::ops::Range<usize>],
    f: impl Fn(&std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    if pieces.len() == 1 {
        return vec![f(&pieces[0])];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|p| {
                let f = &f;
                s.spawn(move || f(p))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("csv worker panicked"))
            .collect()
    })
}

/// `f(piece, state)` for every piece with its own mutable state, in parallel.
fn run_with<S: Send, T: Send>(
    pieces: &[&[u8]],
    states: &mut [S],
    f: impl Fn(&[u8], &mut S) -> T + Sync,
) -> Vec<T> {
    if pieces.len() == 1 {
        return vec![f(pieces[0], &mut states[0])];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .zip(states.iter_mut())
            .map(|(&p, st)| {
                let f = &f;
                s.spawn(move || f(p, st))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("csv worker panicked"))
            .collect()
    })
}

/// Cut `data` into about `n` pieces, each ending just after a newline (the last may not).
fn split(data: &[u8], n: usize) -> Vec<std::ops::Range<usize>> {
    const MIN_PIECE: usize = 1 << 20;
    let n = n.min(data.len() / MIN_PIECE).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = (data.len() * k / n).max(start);
        match memchr(b'\n', &data[target..]) {
            Some(p) => {
                let end = target + p + 1;
                out.push(start..end);
                start = end;
            }
            None => break,
        }
    }
    out.push(start..data.len());
    out
}

#[inline]
fn is_delim(c: Option<&u8>) -> bool {
    matches!(c, None | Some(b',') | Some(b'\n'))
}

/// Parse the lines of one piece, field by field: each read field is lexed in place (its
/// end is where its token stops, which must be a separator), each skipped field is
/// jumped over with a word-at-a-time search for the next separator.
fn parse_piece(data: &[u8], plan: &[Option<usize>], sinks: &mut [Sink]) -> Result<(), PieceError> {
    let ncols = plan.len();
    let mut pos = 0usize;
    let mut row = 0usize;
    while pos < data.len() {
        let local = row as u64;
        if data[pos] == b'\n' {
            return Err((local, "blank line".into()));
        }
        for (i, &want) in plan.iter().enumerate() {
            let end = match want {
                None => next_separator(data, pos),
                Some(k) => read_field(data, pos, &mut sinks[k], row)
                    .map_err(|why| (local, format!("field {i}: {why}")))?,
            };
            match data.get(end) {
                Some(b',') if i + 1 == ncols => {
                    return Err((local, format!("more than {ncols} fields")))
                }
                Some(b',') => {}
                _ if i + 1 < ncols => {
                    return Err((local, format!("{} fields, expected {ncols}", i + 1)))
                }
                _ => {}
            }
            pos = end + 1;
        }
        row += 1;
    }
    Ok(())
}

/// Read the field starting at `data[s]` into `sink[row]`; returns the index of the byte
/// after it (a separator or the end of the data).
#[inline]
fn read_field(data: &[u8], s: usize, sink: &mut Sink, row: usize) -> Result<usize, &'static str> {
    let delimited = |end: usize| is_delim(data.get(end));
    if delimited(s) {
        return Err("empty");
    }
    match sink {
        Sink::TsSeconds(v) => {
            let (ms, end) = lex_seconds(data, s).ok_or("not epoch seconds")?;
            if !delimited(end) {
                return Err("not epoch seconds");
            }
            if !(MIN_MS..MAX_MS).contains(&ms) {
                return Err("timestamp out of range");
            }
            v[row] = ms;
            Ok(end)
        }
        Sink::TsMillis(v) => {
            let (ms, end) = lex_uint(data, s).ok_or("not epoch ms")?;
            if !delimited(end) {
                return Err("not epoch ms");
            }
            if !(MIN_MS..MAX_MS).contains(&ms) {
                return Err("timestamp out of range");
            }
            v[row] = ms;
            Ok(end)
        }
        Sink::I64(v) => {
            let (x, end) = lex_uint(data, s).ok_or("not an integer")?;
            if !delimited(end) {
                return Err("not an integer");
            }
            v[row] = x;
            Ok(end)
        }
        Sink::F64(v) => {
            let (x, end) = lex_decimal(data, s).ok_or("not a decimal")?;
            if !delimited(end) {
                return Err("not a decimal");
            }
            v[row] = x;
            Ok(end)
        }
        Sink::Side(v) => {
            let end = next_separator(data, s);
            let f = &data[s..end];
            v[row] = if f.eq_ignore_ascii_case(b"buy") {
                1
            } else if f.eq_ignore_ascii_case(b"sell") {
                -1
            } else {
                return Err("not buy/sell");
            };
            Ok(end)
        }
        Sink::MakerFlag(v) => {
            let end = next_separator(data, s);
            let f = &data[s..end];
            v[row] = if f.eq_ignore_ascii_case(b"true") || f == b"1" {
                -1
            } else if f.eq_ignore_ascii_case(b"false") || f == b"0" {
                1
            } else {
                return Err("not true/false");
            };
            Ok(end)
        }
        Sink::Str {
            ends,
            region,
            base,
            used,
            spill,
        } => {
            let end = next_separator(data, s);
            let f = &data[s..end];
            if !f.is_ascii() && std::str::from_utf8(f).is_err() {
                return Err("invalid UTF-8");
            }
            match region.get_mut(*used..*used + f.len()) {
                Some(dst) if spill.is_empty() => {
                    dst.copy_from_slice(f);
                    *used += f.len();
                }
                _ => spill.extend_from_slice(f),
            }
            let at = *base + *used + spill.len();
            if at > i32::MAX as usize {
                return Err("text column larger than 2 GiB");
            }
            ends[row] = at as i32;
            Ok(end)
        }
        Sink::Same(v) => {
            if !v.is_empty() && data[s..].starts_with(v) && delimited(s + v.len()) {
                return Ok(s + v.len());
            }
            let end = next_separator(data, s);
            let f = &data[s..end];
            if !v.is_empty() {
                return Err("a second symbol");
            }
            if !f.is_ascii() && std::str::from_utf8(f).is_err() {
                return Err("invalid UTF-8");
            }
            v.extend_from_slice(f);
            Ok(end)
        }
    }
}

/// Index of the first `,` or `\n` at or after `s` (or `data.len()`), 8 bytes at a time.
#[inline]
fn next_separator(data: &[u8], mut s: usize) -> usize {
    while let Some(w) = data.get(s..s + 8) {
        let m = separators(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        if m != 0 {
            return s + (m.trailing_zeros() / 8) as usize;
        }
        s += 8;
    }
    while s < data.len() && data[s] != b',' && data[s] != b'\n' {
        s += 1;
    }
    s
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

/// Digits at `data[s..]` (1 to 18, so no overflow) -> (value, index after the digits).
#[inline]
fn lex_uint(data: &[u8], s: usize) -> Option<(i64, usize)> {
    let mut v: i64 = 0;
    let mut i = s;
    while let Some(&c) = data.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i - s == 18 {
            return None;
        }
        v = v * 10 + d as i64;
        i += 1;
    }
    (i > s).then_some((v, i))
}

/// `SSSSSSSSSS[.fffffffff]` at `data[s..]` -> (floor(ms), index after it). At most 12
/// integer and 9 fraction digits; a point must have digits on both sides.
#[inline]
fn lex_seconds(data: &[u8], s: usize) -> Option<(i64, usize)> {
    let (sec, mut i) = lex_uint(data, s)?;
    if i - s > 12 {
        return None;
    }
    let mut ms = sec * 1000;
    if data.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100;
        while let Some(&c) = data.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - start == 9 {
                return None;
            }
            ms += d as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    Some((ms, i))
}

/// `SSSSSSSSSS[.fffffffff]` -> floor(ms) (the whole of `f`).
#[cfg(test)]
fn seconds_to_ms(f: &[u8]) -> Option<i64> {
    match lex_seconds(f, 0) {
        Some((v, end)) if end == f.len() => Some(v),
        _ => None,
    }
}

/// `digits[.digits]` at `data[s..]` -> (the correctly rounded `f64`, index after it).
#[inline]
fn lex_decimal(data: &[u8], s: usize) -> Option<(f64, usize)> {
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    let mut i = s;
    while let Some(&c) = data.get(i) {
        let d = c.wrapping_sub(b'0');
        if d <= 9 {
            if digits < 19 {
                m = m * 10 + d as u64;
            }
            digits += 1;
        } else if c == b'.' && frac.is_none() && i > s {
            frac = Some(i + 1);
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let k = match frac {
        Some(p) if p == i => return None, // "5." is left to the general parser
        Some(p) => i - p,
        None => 0,
    };
    if digits <= 15 && k < POW10F.len() {
        // m < 10^15 < 2^53 and 10^k are exact: one division is correctly rounded
        return Some((m as f64 / POW10F[k], i));
    }
    let text = std::str::from_utf8(&data[s..i]).ok()?;
    Some((text.parse::<f64>().ok()?, i))
}

/// `digits[.digits]` -> the correctly rounded `f64` (the whole of `f`).
#[cfg(test)]
fn decimal_f64(f: &[u8]) -> Option<f64> {
    match lex_decimal(f, 0) {
        Some((v, end)) if end == f.len() => Some(v),
        _ => None,
    }
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

    /// Bybit-like lines with fixed-width ids (`id-00000`...) unless `wide` rows (given as
    /// row indices) get a longer id.
    fn bybit_text(n: usize, wide: &[usize]) -> String {
        let mut text = String::new();
        for i in 0..n {
            let id = if wide.contains(&i) {
                format!("id-{i:05}-longer")
            } else {
                format!("id-{i:05}")
            };
            text.push_str(&format!(
                "1748736000.{:04},BTCUSDT,Buy,0.{:03},{}.5,PlusTick,{id},1e9,0.1,5\n",
                i % 10_000,
                i % 1000 + 1,
                100_000 + i
            ));
        }
        text
    }

    fn ids(p: &Parsed, k: usize) -> Vec<String> {
        let Column::Str { offsets, data } = &p.columns[k] else {
            panic!()
        };
        assert_eq!(offsets[0], 0);
        assert_eq!(*offsets.last().unwrap() as usize, data.len());
        offsets
            .windows(2)
            .map(|w| String::from_utf8(data[w[0] as usize..w[1] as usize].to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn text_columns_are_exact_whether_or_not_the_width_is_fixed() {
        let spec = kinds(&[(0, "ts_s"), (6, "str"), (1, "same")]);
        // fixed width: the sampled width holds, the text is written in place
        let text = bybit_text(60_000, &[]);
        let lay = layout(text.as_bytes(), 2, 10, &spec, 4).unwrap();
        assert!(lay.pieces.len() > 1);
        assert_eq!(lay.text_len(1), 8 * 60_000);
        // a wider id after the sample (in the first and in the last piece), and one in
        // the sample (no width hint at all)
        for wide in [vec![], vec![100, 59_999], vec![3]] {
            let text = bybit_text(60_000, &wide);
            let want: Vec<String> = (0..60_000)
                .map(|i| {
                    if wide.contains(&i) {
                        format!("id-{i:05}-longer")
                    } else {
                        format!("id-{i:05}")
                    }
                })
                .collect();
            for threads in [1, 2, 4] {
                let p = parse(text.as_bytes(), 2, 10, &spec, threads).unwrap();
                assert_eq!(p.rows, 60_000);
                assert_eq!(ids(&p, 1), want, "wide {wide:?}, {threads} threads");
                assert_eq!(p.columns[2], Column::Same(b"BTCUSDT".to_vec()));
            }
        }
    }

    #[test]
    fn declines_in_a_later_piece_name_their_physical_line() {
        let spec = kinds(&[(0, "ts_s"), (3, "f64"), (1, "same")]);
        let n = 60_000;
        let good = bybit_text(n, &[]);
        let lines: Vec<&str> = good.lines().collect();
        for (row, bad) in [
            (50_000, lines[50_000].replacen("0.", "x.", 1)),
            (50_001, lines[50_001].replace("BTCUSDT", "ETHUSDT")),
            (59_999, format!("{},extra", lines[59_999])),
        ] {
            let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            v[row] = bad;
            let text = v.join("\n") + "\n";
            for threads in [1, 4] {
                let err = parse(text.as_bytes(), 2, 10, &spec, threads).unwrap_err();
                // the same symbol check across pieces names the first line of the piece
                // holding the second value; everything else names the line itself
                if err.reason.contains("single-value") {
                    assert!(err.line <= row as u64 + 2, "{err:?}");
                } else {
                    assert_eq!(err.line, row as u64 + 2, "{threads} threads: {err:?}");
                }
            }
        }
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
