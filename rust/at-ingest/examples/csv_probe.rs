//! Time the CSV fast path on a file: `cargo run --release -p at-ingest --example csv_probe -- FILE`.
use at_ingest::csv::{parse, FieldKind};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: csv_probe FILE");
    let data = std::fs::read(path).expect("read");
    let start = data.iter().position(|&b| b == b'\n').expect("header") + 1;
    let spec = [
        (0, FieldKind::TsSeconds),
        (1, FieldKind::Same),
        (2, FieldKind::Side),
        (3, FieldKind::F64),
        (4, FieldKind::F64),
        (6, FieldKind::Str),
    ];
    for (name, sp) in [
        ("none", &spec[..0]),
        ("ts", &spec[..1]),
        ("px", &spec[3..5]),
        ("id", &spec[5..]),
    ] {
        let t = Instant::now();
        let p = parse(&data[start..], 2, 10, sp, 1).expect("clean");
        println!("{name}: {} rows in {:?}", p.rows, t.elapsed());
    }
    for threads in [1, 2, 1, 2] {
        let t = Instant::now();
        let p = parse(&data[start..], 2, 10, &spec, threads).expect("clean");
        println!("threads {threads}: {} rows in {:?}", p.rows, t.elapsed());
    }
    let t = Instant::now();
    let n = memchr::memchr_iter(b'\n', &data).count();
    println!("newline count {n} in {:?}", t.elapsed());
}
