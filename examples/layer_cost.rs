//! The CPU cost of each at-rest layer's own work per session cycle (one write's encode and one read's
//! decode, plus the id hashing of a cycle's calls), without any engine: what a layer adds to a cycle
//! whatever the storage. Usage: cargo run --release --example layer_cost   (bench/layers.sh runs it)
use std::time::Instant;

use session_proxy::id::SessionId;
use session_proxy::settings::Codec;
use session_proxy::store::layer::compress::Compress;
use session_proxy::store::layer::encrypt::{Encrypt, KeyRing};
use session_proxy::store::layer::hashid;
use session_proxy::store::layer::keys::Secret;
use session_proxy::store::layer::transform::Transcode;

/// A PHP-serialized, JSON-like session of about `n` bytes (records of a cart, as bench/layers.php).
fn payload(n: usize) -> Vec<u8> {
    let mut s = String::from("_token|s:40:\"0123456789abcdef0123456789abcdef01234567\";cart|a:0:{");
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!(
            "i:{i};a:4:{{s:2:\"id\";i:{};s:3:\"sku\";s:11:\"SKU-{:05}-M\";s:4:\"name\";s:25:\"Organic cotton T-shirt #{i}\";s:5:\"price\";d:{}.99;}}",
            100000 + i,
            (i * 7919) % 100000,
            i % 90 + 5
        ));
        i += 1;
    }
    s.truncate(n);
    s.into_bytes()
}

fn per_op(mut f: impl FnMut()) -> f64 {
    let mut n = 0u32;
    let start = Instant::now();
    while start.elapsed().as_millis() < 300 || n < 20 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn cycle(t: &impl Transcode, id: &SessionId, data: &[u8]) -> f64 {
    per_op(|| {
        let stored = t.encode(id, data).unwrap().into_owned();
        assert_eq!(t.decode(id, stored).unwrap().len(), data.len());
    })
}

fn main() {
    let id = SessionId::parse(b"bench000000000000000000000000001").unwrap();
    let key = Secret::new([7; 32]);
    let enc = Encrypt { keys: KeyRing { current: key.clone(), old: vec![] } };
    println!("| payload | encryption | zstd | lz4 | zstd + encryption | hash_ids (4 hashes) |");
    println!("|---|---|---|---|---|---|");
    for n in [200, 4096, 65536] {
        let data = payload(n);
        let zstd = Compress { codec: Some(Codec::Zstd), threshold: 0 };
        let lz4 = Compress { codec: Some(Codec::Lz4), threshold: 0 };
        let both = per_op(|| {
            let z = zstd.encode(&id, &data).unwrap();
            let s = enc.encode(&id, &z).unwrap().into_owned();
            let back = zstd.decode(&id, enc.decode(&id, s).unwrap()).unwrap();
            assert_eq!(back.len(), data.len());
        });
        // A locked cycle hashes the id for lock_and_load, save, and (at most) lock_holder/unlock.
        let h = per_op(|| {
            for _ in 0..4 {
                std::hint::black_box(hashid::hashed(&key, &id));
            }
        });
        println!(
            "| {n} B | {:.1} µs | {:.1} µs | {:.1} µs | {both:.1} µs | {h:.1} µs |",
            cycle(&enc, &id, &data),
            cycle(&zstd, &id, &data),
            cycle(&lz4, &id, &data)
        );
    }
}
