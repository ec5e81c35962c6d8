//! mask_secrets never lets a password through: the fuzzer builds DSNs around a secret, in the
//! userinfo (`user:SECRET@host`, `SECRET@host`) or as the value of a secret option (auth, password,
//! pass, secret, sentinel_password, auth[]: any case, the key possibly percent-encoded), with arbitrary
//! scheme, host, path and other options around it, or in phpredis' cluster form (`seed[]=…&auth=…`,
//! `seed[]=user:SECRET@host`). Neither mask_secrets nor the message of a refused DSN may contain it.
//!
//! A secret is drawn from what a password can hold unencoded in that place: in the userinfo, URL
//! userinfo characters plus '/' (base64 passwords), not '@', '?', '#' (which end a userinfo); in an
//! option value, anything but '&' (which ends it) and '#'.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

use session_proxy::dsn;

/// Takes a length-prefixed chunk of input as text, filtered by `keep`.
fn chunk(data: &mut &[u8], keep: impl Fn(char) -> bool) -> String {
    let Some((&n, rest)) = data.split_first() else { return String::new() };
    let n = (n as usize % 24).min(rest.len());
    let (c, rest) = rest.split_at(n);
    *data = rest;
    String::from_utf8_lossy(c).chars().filter(|&c| keep(c)).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut d = data;
    let Some((&sel, rest)) = d.split_first() else { return };
    d = rest;
    let schemes = [
        "redis", "rediss", "tcp", "memcached", "sqlite", "files", "REDIS", "ftp", "redis-sentinel", "x",
        "rediss-sentinel", "rediss-cluster", "seed",
    ];
    let scheme = schemes[sel as usize % schemes.len()];
    let in_userinfo = sel & 0x80 == 0;
    let userinfo_char = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:/%".contains(c);
    let value_char = |c: char| c != '&' && c != '#' && !c.is_control();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~:,".contains(c);

    // A marker no other part can contain (they are restricted to `plain` / path characters).
    let secret = format!("Zq9{}", chunk(&mut d, if in_userinfo { &userinfo_char as &dyn Fn(char) -> bool } else { &value_char }));
    let user = chunk(&mut d, plain);
    let host = chunk(&mut d, plain);
    let path = chunk(&mut d, |c| plain(c) || c == '/' || c == '@');
    let other = chunk(&mut d, plain);
    let key_sel = d.first().copied().unwrap_or(0);
    let keys = [
        "auth", "password", "pass", "secret", "AUTH", "Password", "p%61ss", "%70assword", "a%75th",
        "sentinel_password", "SENTINEL%5FPASSWORD", "auth[]", "auth%5B%5D", "auth[pass]",
    ];
    let key = keys[key_sel as usize % keys.len()];
    if [&user, &host, &path, &other].iter().any(|p| p.contains("Zq9")) {
        return;
    }
    // Without a user name the first ':' starts the password: a bare secret holds none.
    let secret = if in_userinfo && key_sel & 1 == 1 { secret.replace(':', "") } else { secret };
    // In phpredis' cluster form '&' and '=' delimit the pairs, wherever they stand.
    let secret = if scheme == "seed" { secret.replace(['&', '='], "") } else { secret };

    let dsn = if scheme == "seed" {
        // phpredis' rediscluster form: all query, credentials in auth= or (refused) in a seed.
        if in_userinfo {
            let ui = if key_sel & 1 == 0 { format!("{user}:{secret}") } else { secret.clone() };
            format!("seed[]={ui}@{host}&x={other}")
        } else {
            format!("seed[]={host}&x={other}&{key}={secret}")
        }
    } else if in_userinfo {
        let ui = if key_sel & 1 == 0 { format!("{user}:{secret}") } else { secret.clone() };
        format!("{scheme}://{ui}@{host}/{path}?x={other}")
    } else {
        let q = match key_sel % 3 {
            0 => format!("{key}={secret}"),
            1 => format!("x={other}&{key}={secret}"),
            _ => format!("{key}={secret}&x={other}"),
        };
        format!("{scheme}://{user}@{host}/{path}?{q}")
    };
    let masked = dsn::mask_secrets(&dsn);
    assert!(!masked.contains(&secret), "mask_secrets({dsn:?}) = {masked:?} shows the secret");
    if let Err(e) = dsn::parse(&dsn, Path::new("/tmp")) {
        let msg = e.to_string();
        assert!(!msg.contains(&secret), "the message for {dsn:?} shows the secret: {msg}");
    }
});
