//! Server selection compatible with libmemcached's consistent hashing as php-memcached configures it
//! for sessions (`memcached.sess_consistent_hash=On`, type `ketama`), so both handlers put a session on
//! the same server:
//!
//! - all weights equal (the default): `MEMCACHED_BEHAVIOR_KETAMA` keeps libmemcached's default hash,
//!   Jenkins one-at-a-time, for both the continuum points and the keys; 100 points per server named
//!   `host:port-N` (`host-N` on port 11211), N from 0;
//! - weighted (`weights=`; php-memcached with `memcached.sess_consistent_hash_type=ketama_weighted` and
//!   `host:port:weight` servers): 160 points per server scaled by its share of the total weight, four
//!   per MD5 digest of `host:port-N`; keys hashed with MD5 too (first four bytes, little-endian).
//!   (With plain `ketama`, php-memcached 3.2.0 / libmemcached 1.1.4 ignore weights: checked.)
//!
//! Keys are hashed without the prefix (libmemcached's namespace is not part of the hash). Checked
//! against the real php-memcached in php-tests/memcached_placement.phpt.

/// Jenkins one-at-a-time, libmemcached's `HASHKIT_HASH_DEFAULT`.
pub fn one_at_a_time(key: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &b in key {
        h = h.wrapping_add(b as u32);
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h = h.wrapping_add(h << 15);
    h
}

#[derive(Debug, Clone)]
pub struct Continuum {
    /// (point, server index), sorted.
    points: Vec<(u32, usize)>,
    weighted: bool,
}

fn md5_u32(key: &[u8]) -> u32 {
    let d = md5::compute(key).0;
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

impl Continuum {
    /// `names[i]` is server i as libmemcached names it (`host:port`, or `host` on port 11211).
    pub fn new(names: &[String], weights: &[u32], weighted: bool) -> Self {
        let total: u64 = weights.iter().map(|w| (*w).max(1) as u64).sum();
        let mut points = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if weighted {
                let pct = weights[i].max(1) as f32 / total as f32;
                let per_server = ((pct * 160.0 / 4.0 * names.len() as f32 + 0.000_000_000_1f32).floor() as u32) * 4;
                for n in 0..per_server / 4 {
                    let d = md5::compute(format!("{name}-{n}").as_bytes()).0;
                    for x in 0..4 {
                        let v = u32::from_le_bytes([d[4 * x], d[4 * x + 1], d[4 * x + 2], d[4 * x + 3]]);
                        points.push((v, i));
                    }
                }
            } else {
                for n in 0..100 {
                    points.push((one_at_a_time(format!("{name}-{n}").as_bytes()), i));
                }
            }
        }
        points.sort_unstable();
        Continuum { points, weighted }
    }

    /// The server for a key (hashed without prefix).
    pub fn pick(&self, key: &[u8]) -> usize {
        if self.points.is_empty() {
            return 0;
        }
        let h = if self.weighted { md5_u32(key) } else { one_at_a_time(key) };
        let i = self.points.partition_point(|(p, _)| *p < h);
        self.points.get(i).unwrap_or(&self.points[0]).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_vectors() {
        assert_eq!(one_at_a_time(b""), 0);
        assert_eq!(one_at_a_time(b"a"), 0xca2e9442);
        assert_eq!(one_at_a_time(b"The quick brown fox jumps over the lazy dog"), 0x519e91f5);
    }

    #[test]
    fn placement_matches_php_memcached() {
        // Placements observed with Debian's php8.2-memcached 3.2.0 (libmemcached 1.1.4) writing sessions
        // to these three servers (index in this list).
        let names: Vec<String> = ["127.0.0.1:21301", "127.0.0.1:21302", "127.0.0.1:21303"].iter().map(|s| s.to_string()).collect();
        let c = Continuum::new(&names, &[1, 1, 1], false);
        for (key, want) in KNOWN {
            assert_eq!(c.pick(key.as_bytes()), *want, "{key}");
        }
        // Every server gets a fair share.
        let mut n = [0usize; 3];
        for i in 0..3000 {
            n[c.pick(format!("k{i}").as_bytes())] += 1;
        }
        assert!(n.iter().all(|c| *c > 600), "{n:?}");
    }

    #[test]
    fn weighted_ring_favours_heavy_servers() {
        let names: Vec<String> = ["a:1", "b:2"].iter().map(|s| s.to_string()).collect();
        let c = Continuum::new(&names, &[3, 1], true);
        let heavy = (0..4000).filter(|i| c.pick(format!("k{i}").as_bytes()) == 0).count();
        assert!(heavy > 2500, "{heavy}");
    }

    #[test]
    fn weighted_placement_matches_php_memcached() {
        // php-memcached with memcached.sess_consistent_hash_type=ketama_weighted and save_path
        // 127.0.0.1:21301:3,127.0.0.1:21302:1,127.0.0.1:21303:1 (300 of 300 checked; 183/70/47 split).
        let names: Vec<String> = ["127.0.0.1:21301", "127.0.0.1:21302", "127.0.0.1:21303"].iter().map(|s| s.to_string()).collect();
        let c = Continuum::new(&names, &[3, 1, 1], true);
        for (key, want) in KNOWN_WEIGHTED {
            assert_eq!(c.pick(key.as_bytes()), *want, "{key}");
        }
    }

    const KNOWN_WEIGHTED: &[(&str, usize)] = &[
        ("sid0e50eb7598b580311bab8f39bb8f4815b", 2), ("sid16dbf9ac2da09ee1d3debf5a51873ec6d", 2),
        ("sid28e683187a00e5d462a4aeee69e9d3d9c", 0), ("sid31414c9756505ddfb8ba0a3b6fc9d691f", 1),
        ("sid4bf947d200d7b021b18d38437f3bc1940", 2), ("sid5f4fe292eb01627a0219872d44a305ec5", 0),
        ("sid69d1c815ede9bca71c14a44593b1dcc53", 0), ("sid72436f23b98933a71439259c4bca8674b", 1),
    ];

    const KNOWN: &[(&str, usize)] = &[
        ("sid0e50eb7598b580311bab8f39bb8f4815b", 2), ("sid16dbf9ac2da09ee1d3debf5a51873ec6d", 1),
        ("sid28e683187a00e5d462a4aeee69e9d3d9c", 0), ("sid31414c9756505ddfb8ba0a3b6fc9d691f", 1),
        ("sid4bf947d200d7b021b18d38437f3bc1940", 0), ("sid5f4fe292eb01627a0219872d44a305ec5", 0),
        ("sid69d1c815ede9bca71c14a44593b1dcc53", 1), ("sid72436f23b98933a71439259c4bca8674b", 1),
        ("sid8f2eebf3df8eb7d5db757de1c2d00d74d", 1), ("sid9d0c2225b640deec861a1208f37a77c25", 0),
        ("sid102040a28d572e0889b2b34e9c66814f57", 1), ("sid116d865d85813b1261953b3e79cdb04716", 0),
    ];
}
