//! A small purpose-built JSON scanner for order-book messages.
//!
//! Why not a general JSON library: an ob500 day is ~864,000 messages whose bulk is arrays
//! of `["price","size"]` string pairs. Decoding those into owned strings or `f64` only to
//! convert them again costs most of the time. This scanner walks the bytes once, reads
//! prices and sizes straight into exact fixed-point integers (1e-8 units), skips every key
//! it does not need (so new fields added by the exchange are harmless), and never
//! allocates per message. It accepts any key order and insignificant whitespace.

/// Fixed-point scale of prices and sizes: 8 decimals (Bybit quotes at most 8).
pub const SCALE: i64 = 100_000_000;
const SCALE_DIGITS: usize = 8;
/// Integer digits allowed before the point, so that value * SCALE fits in an i64 and
/// stays exact as an f64 mantissa for any realistic price or size.
const MAX_INT_DIGITS: usize = 10;
const POW10: [i64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Why a line could not be read: the JSON field (dotted path) and a short reason.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanError {
    pub field: &'static str,
    pub reason: String,
}

impl ScanError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Parse a non-negative decimal such as `"42000.10"` into units of 1e-8, exactly.
/// Extra fraction digits are accepted only when they are zeros (no silent rounding).
pub fn decimal(s: &[u8]) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty number".into());
    }
    let mut i = 0;
    let mut int: i64 = 0;
    let mut int_digits = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        int = int * 10 + (s[i] - b'0') as i64;
        int_digits += 1;
        i += 1;
        if int_digits > MAX_INT_DIGITS {
            return Err(format!("number too large {:?}", lossy(s)));
        }
    }
    let mut frac: i64 = 0;
    let mut frac_digits = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            let d = (s[i] - b'0') as i64;
            if frac_digits < SCALE_DIGITS {
                frac = frac * 10 + d;
                frac_digits += 1;
            } else if d != 0 {
                return Err(format!("more than 8 decimals in {:?}", lossy(s)));
            }
            i += 1;
        }
    }
    if i != s.len() || (int_digits == 0 && frac_digits == 0) {
        return Err(format!("not a non-negative decimal number: {:?}", lossy(s)));
    }
    let mut f = frac;
    for _ in frac_digits..SCALE_DIGITS {
        f *= 10;
    }
    Ok(int * SCALE + f)
}

pub fn lossy(s: &[u8]) -> String {
    let t = String::from_utf8_lossy(&s[..s.len().min(60)]).into_owned();
    if s.len() > 60 {
        t + "..."
    } else {
        t
    }
}

/// Byte cursor over one line.
pub struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub fn expect(&mut self, c: u8, field: &'static str) -> Result<(), ScanError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.unexpected(field, c))
        }
    }

    fn unexpected(&mut self, field: &'static str, want: u8) -> ScanError {
        match self.peek() {
            None => ScanError::new(
                field,
                format!("line ends early (expected '{}')", want as char),
            ),
            Some(c) => ScanError::new(
                field,
                format!(
                    "expected '{}' at column {}, found '{}'",
                    want as char,
                    self.i + 1,
                    c as char
                ),
            ),
        }
    }

    /// The raw bytes of a string (between the quotes; escapes are left as they are:
    /// none of the fields read here can contain one).
    #[inline]
    pub fn string(&mut self, field: &'static str) -> Result<&'a [u8], ScanError> {
        self.expect(b'"', field)?;
        let start = self.i;
        // keys and values here are short: a plain loop beats a SIMD search's set-up cost
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    let s = &self.b[start..self.i];
                    self.i += 1;
                    return Ok(s);
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        self.i = self.b.len();
        Err(ScanError::new(field, "unterminated string"))
    }

    /// A bare token (number or literal) up to the next delimiter.
    #[inline]
    fn token(&mut self) -> &'a [u8] {
        self.ws();
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    /// An integer written as a JSON number or as a string of digits.
    pub fn int(&mut self, field: &'static str) -> Result<i64, ScanError> {
        // fast path: a bare run of digits followed by a delimiter
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                let b = self.b;
                let mut i = self.i;
                let mut v: i64 = 0;
                while i < b.len() && b[i].is_ascii_digit() && i - self.i < 18 {
                    v = v * 10 + (b[i] - b'0') as i64;
                    i += 1;
                }
                if i == b.len() || matches!(b[i], b',' | b'}' | b']' | b' ') {
                    self.i = i;
                    return Ok(v);
                }
            }
        }
        let raw = if self.peek() == Some(b'"') {
            self.string(field)?
        } else {
            self.token()
        };
        parse_int(raw)
            .ok_or_else(|| ScanError::new(field, format!("not an integer: {:?}", lossy(raw))))
    }

    /// A decimal written as a string (`"42000.1"`, Bybit's way) or a bare number.
    #[inline]
    pub fn decimal(&mut self, field: &'static str) -> Result<i64, ScanError> {
        // fast path: `"ddd.dddd"` with at most 8 decimals, parsed while scanning
        if self.peek() == Some(b'"') {
            let b = self.b;
            let mut i = self.i + 1;
            let mut v: i64 = 0;
            let mut n_int = 0usize;
            while i < b.len() && b[i].is_ascii_digit() && n_int < MAX_INT_DIGITS {
                v = v * 10 + (b[i] - b'0') as i64;
                i += 1;
                n_int += 1;
            }
            let mut n_frac = 0usize;
            if i < b.len() && b[i] == b'.' {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() && n_frac < SCALE_DIGITS {
                    v = v * 10 + (b[i] - b'0') as i64;
                    i += 1;
                    n_frac += 1;
                }
            }
            if i < b.len() && b[i] == b'"' && n_int + n_frac > 0 {
                self.i = i + 1;
                return Ok(v * POW10[SCALE_DIGITS - n_frac]);
            }
            // anything unusual (more decimals, bad text): the careful path below
        }
        let raw = if self.peek() == Some(b'"') {
            self.string(field)?
        } else {
            self.token()
        };
        decimal(raw).map_err(|r| ScanError::new(field, r))
    }

    /// `[[px, sz], ...]` appended to `out` as fixed-point pairs.
    pub fn levels(
        &mut self,
        out: &mut Vec<(i64, i64)>,
        field: &'static str,
    ) -> Result<(), ScanError> {
        self.expect(b'[', field)?;
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            self.expect(b'[', field)?;
            let px = self.decimal(field)?;
            self.expect(b',', field)?;
            let sz = self.decimal(field)?;
            self.expect(b']', field)?;
            out.push((px, sz));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected(field, b']')),
            }
        }
    }

    /// Skip any JSON value (nested objects and arrays included).
    pub fn skip_value(&mut self, field: &'static str) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"') => self.string(field).map(|_| ()),
            Some(b'{') | Some(b'[') => {
                let mut depth = 0usize;
                while let Some(&c) = self.b.get(self.i) {
                    match c {
                        b'{' | b'[' => {
                            depth += 1;
                            self.i += 1;
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            self.i += 1;
                            if depth == 0 {
                                return Ok(());
                            }
                        }
                        b'"' => {
                            self.string(field)?;
                        }
                        _ => self.i += 1,
                    }
                }
                Err(ScanError::new(field, "unterminated object or array"))
            }
            None => Err(ScanError::new(field, "line ends early (missing value)")),
            _ => {
                if self.token().is_empty() {
                    Err(ScanError::new(field, "missing value"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Only whitespace left?
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }
}

fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_fixed_point() {
        assert_eq!(decimal(b"42000.1"), Ok(4_200_010_000_000));
        assert_eq!(decimal(b"0"), Ok(0));
        assert_eq!(decimal(b"0.001"), Ok(100_000));
        assert_eq!(decimal(b".5"), Ok(50_000_000));
        assert_eq!(decimal(b"7."), Ok(700_000_000));
        assert_eq!(decimal(b"1.000000000"), Ok(SCALE)); // trailing zeros beyond 8 decimals
        assert!(decimal(b"1.000000001").is_err()); // would round: refused
        assert!(decimal(b"-1").is_err());
        assert!(decimal(b"1e5").is_err());
        assert!(decimal(b"").is_err());
        assert!(decimal(b".").is_err());
        assert!(decimal(b"12345678901").is_err());
        // converting back by division gives the double nearest to the decimal text
        let v = decimal(b"42000.1").unwrap() as f64 / SCALE as f64;
        assert_eq!(v, "42000.1".parse::<f64>().unwrap());
    }

    #[test]
    fn levels_and_skip() {
        let mut c = Cursor::new(br#" [ ["1.5", "2"] ,["3","0"]] , {"x":[1,{"y":"]"}]} "z""#);
        let mut v = Vec::new();
        c.levels(&mut v, "b").unwrap();
        assert_eq!(v, vec![(150_000_000, 200_000_000), (300_000_000, 0)]);
        c.expect(b',', "x").unwrap();
        c.skip_value("x").unwrap();
        assert_eq!(c.string("z").unwrap(), b"z");
        assert!(c.at_end());
        let mut c = Cursor::new(br#"[["1","2"]"#);
        assert!(c.levels(&mut v, "b").is_err());
    }

    #[test]
    fn ints() {
        assert_eq!(Cursor::new(b"123,").int("u"), Ok(123));
        assert_eq!(Cursor::new(br#""-5""#).int("u"), Ok(-5));
        assert!(Cursor::new(b"1.5").int("u").is_err());
        assert!(Cursor::new(b"").int("u").is_err());
    }
}
