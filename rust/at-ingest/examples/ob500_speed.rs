//! Decode an ob500 file (plain JSON lines) and print messages/s:
//! `cargo run --release -p at-ingest --example ob500_speed -- FILE`
use at_ingest::ObDecoder;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: ob500_speed FILE");
    let data = std::fs::read(&path).expect("read");
    let t = Instant::now();
    let mut sum = 0u64;
    for &b in &data {
        sum = sum.wrapping_add(b as u64);
    }
    println!(
        "calibration: byte sum {} in {:.3} s",
        sum,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut d = ObDecoder::new();
    for c in data.chunks(4 << 20) {
        d.feed(c);
    }
    d.finish();
    let s = t.elapsed().as_secs_f64();
    let st = d.stats().clone();
    println!(
        "{} messages, {} quotes, {:.3} s, {:.2} M msg/s, {:.0} MB/s",
        st.messages,
        st.quotes,
        s,
        st.messages as f64 / s / 1e6,
        data.len() as f64 / s / 1e6
    );
}
