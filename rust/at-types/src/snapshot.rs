//! Snapshots of streaming state: a bit-exact binary image, sealed with a header, and the
//! check that a snapshot is restored with the settings it was taken with.
//!
//! Layout: `magic` (8 bytes, what the snapshot is of) | format version (u32 LE) | payload
//! length (u64 LE) | FNV-1a 64 checksum of the payload (u64 LE) | payload (bincode 1.3,
//! fixed-width little-endian integers).
//!
//! Pitfalls this module exists for:
//! * Text formats lose state. `serde_json` cannot carry NaN or ±inf (a NaN mark, an unset
//!   EMA or a missing quote price is NaN in this system and would come back as `null`, then
//!   fail or default), and decimal round trips of f64 need care. bincode writes every f64
//!   as its 8 raw bytes, so a restored engine continues bit for bit (NaN payloads too).
//! * bincode is not self-describing: a reader built from a different type layout may read
//!   garbage without any error. The format version therefore has to be bumped whenever a
//!   snapshotted type changes (field added, removed or reordered, enum variant added), and
//!   `#[serde(skip_serializing_if)]` / `#[serde(flatten)]` must never be used on these
//!   types (both break non-self-describing formats).
//! * A flipped byte inside an f64 is still a valid f64: without the checksum a damaged
//!   snapshot would restore "fine" and trade on a corrupted book. Truncation and trailing
//!   bytes are refused as well; nothing here panics on bad input.
//! * A snapshot taken with other settings must never be continued under new ones (the
//!   rolling state was built by the old ones): [`check_same`] names the first differing
//!   key.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::AtError;

/// Bytes before the payload: magic, version, length, checksum.
pub const HEADER_LEN: usize = 8 + 4 + 8 + 8;

fn options() -> impl bincode::Options + Copy {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// FNV-1a, 64 bits (detects corruption; not a defence against tampering).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn bad(what: &str, message: String) -> AtError {
    AtError::InvalidInput {
        location: format!("{what} snapshot"),
        message,
    }
}

/// Serialise `body` behind the header of `magic` / `version`.
pub fn seal<T: Serialize>(
    magic: &[u8; 8],
    version: u32,
    what: &str,
    body: &T,
) -> Result<Vec<u8>, AtError> {
    use bincode::Options;
    let o = options();
    let n = o
        .serialized_size(body)
        .map_err(|e| bad(what, format!("cannot serialise: {e}")))?;
    let mut out = Vec::with_capacity(HEADER_LEN + n as usize);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    o.serialize_into(&mut out, body)
        .map_err(|e| bad(what, format!("cannot serialise: {e}")))?;
    let h = fnv1a64(&out[HEADER_LEN..]);
    out[20..28].copy_from_slice(&h.to_le_bytes());
    Ok(out)
}

/// Check the header of `bytes` (magic, version, length, checksum) and deserialise the
/// payload; every failure is an `InvalidInput` naming what is wrong.
pub fn open<T: DeserializeOwned>(
    magic: &[u8; 8],
    version: u32,
    what: &str,
    bytes: &[u8],
) -> Result<T, AtError> {
    use bincode::Options;
    if bytes.len() < HEADER_LEN {
        return Err(bad(
            what,
            format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header (truncated?)",
                bytes.len()
            ),
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    if &bytes[..8] != magic {
        return Err(bad(
            what,
            format!(
                "not a {what} snapshot: magic {:?}, expected {:?}",
                String::from_utf8_lossy(&bytes[..8]),
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let v = u32_at(8);
    if v != version {
        return Err(bad(
            what,
            format!("format version {v}; this build reads version {version} only"),
        ));
    }
    let (n, sum) = (u64_at(12), u64_at(20));
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != n {
        return Err(bad(
            what,
            format!(
                "payload is {} bytes, the header says {n} (truncated or padded)",
                payload.len()
            ),
        ));
    }
    if fnv1a64(payload) != sum {
        return Err(bad(
            what,
            "checksum mismatch: the bytes are corrupted".into(),
        ));
    }
    options()
        .with_limit(n)
        .deserialize(payload)
        .map_err(|e| bad(what, format!("cannot deserialise: {e}")))
}

/// Refuse to continue a snapshot under other settings: `Err(InvalidConfig)` naming the
/// first key (dotted path) whose value in `given` differs from the one in `snapshot`.
/// Numbers compare by their shortest round-trip text, i.e. bit for bit (NaN equals NaN).
pub fn check_same<T: Serialize>(what: &str, snapshot: &T, given: &T) -> Result<(), AtError> {
    let json = |x: &T| {
        serde_json::to_value(x).map_err(|e| AtError::InvalidConfig {
            key: what.into(),
            message: format!("cannot compare: {e}"),
        })
    };
    let (a, b) = (json(snapshot)?, json(given)?);
    match first_difference(what, &a, &b) {
        None => Ok(()),
        Some((key, x, y)) => Err(AtError::InvalidConfig {
            key,
            message: format!(
                "the snapshot was taken with {x}, the restore gives {y}; a snapshot is only \
                 restored with the settings it was taken with"
            ),
        }),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

fn first_difference(path: &str, a: &Value, b: &Value) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_difference(&p, va, vb) {
                            return Some(d);
                        }
                    }
                    None => return Some((p, short(va), "nothing".into())),
                }
            }
            y.iter()
                .find(|(k, _)| !x.contains_key(*k))
                .map(|(k, vb)| (format!("{path}.{k}"), "nothing".into(), short(vb)))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some((
                    path.into(),
                    format!("{} values", x.len()),
                    format!("{} values", y.len()),
                ));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb))
        }
        (Value::Number(x), Value::Number(y)) => {
            (x.to_string() != y.to_string()).then(|| (path.into(), x.to_string(), y.to_string()))
        }
        _ => (a != b).then(|| (path.into(), short(a), short(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct S {
        a: f64,
        b: Vec<i64>,
        c: Option<f64>,
    }

    const M: &[u8; 8] = b"TESTSNAP";

    #[test]
    fn round_trip_is_bit_exact_and_damage_is_refused() {
        let s = S {
            a: f64::from_bits(0x7ff8_0000_dead_beef), // a NaN with a payload
            b: vec![1, -2, i64::MIN],
            c: Some(-0.0),
        };
        let bytes = seal(M, 3, "test", &s).unwrap();
        let r: S = open(M, 3, "test", &bytes).unwrap();
        assert_eq!(r.a.to_bits(), s.a.to_bits());
        assert_eq!(r.c.unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(r.b, s.b);
        let err = |b: &[u8], v: u32| open::<S>(M, v, "test", b).unwrap_err().to_string();
        assert!(err(&bytes, 4).contains("format version 3"));
        assert!(err(&bytes[..bytes.len() - 1], 3).contains("truncated"));
        assert!(err(&bytes[..10], 3).contains("header"));
        assert!(err(b"NOTASNAPxxxxxxxxxxxxxxxxxxxxxxxxxx", 3).contains("magic"));
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN + 3] ^= 1;
        assert!(err(&flipped, 3).contains("checksum"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(err(&longer, 3).contains("truncated or padded"));
    }

    #[test]
    fn a_differing_setting_is_named() {
        let a = S {
            a: 1.0,
            b: vec![1, 2],
            c: None,
        };
        let b = S {
            a: 1.0,
            b: vec![1, 3],
            c: None,
        };
        assert!(check_same("x", &a, &a).is_ok());
        match check_same("x", &a, &b).unwrap_err() {
            AtError::InvalidConfig { key, message } => {
                assert_eq!(key, "x.b[1]");
                assert!(message.contains("taken with 2"), "{message}");
            }
            e => panic!("{e}"),
        }
        let c = S {
            a: 1.0000000000000002,
            ..a
        };
        let a = S {
            a: 1.0,
            b: vec![1, 2],
            c: None,
        };
        assert!(check_same("x", &a, &c).is_err(), "one ulp differs");
    }
}
