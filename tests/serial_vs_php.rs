//! src/serial.rs against PHP's own session encoder and decoder (issue 12: "valid serializations
//! against PHP's own unserialize on a corpus"). PHP (tests/php/serial_corpus.php) writes random
//! sessions in php, php_serialize and php_binary, with nested arrays, objects with protected and
//! private properties, binary strings, floats such as -0 and INF, and sometimes references; then:
//! - the tokenizer must find exactly PHP's top-level keys, in order, each value's bytes equal to
//!   `serialize()` of that value, and refuse exactly the sessions that hold references;
//! - for triples (base, this request's change, another request's change) the merge must give a
//!   session that PHP's `session_decode` reads back as the expected array, under merge_conflict=last
//!   and =first, with the conflict counted when both changed one key.
//!
//! PHP is a test dependency here (`make test` installs it); its absence is a failure, not a skip.
//! SP_SERIAL_CORPUS=N sessions per format (default 1500), SP_SERIAL_SEED=S to replay a run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use session_proxy::serial::{entries, merge, Format, OnConflict, SerialError};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex field {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex field")).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn corpus_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php/serial_corpus.php").display().to_string()
}

fn php(args: &[&str], stdin: Option<&[u8]>) -> String {
    let php = std::env::var("TEST_PHP_EXECUTABLE").unwrap_or_else(|_| "php".into());
    let mut child = Command::new(&php)
        .args(["-n", "-d", "display_errors=stderr", "-d", "error_reporting=-1"])
        .arg(corpus_script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {php} (PHP is needed for this test: make test installs it): {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.map(<[u8]>::to_vec).unwrap_or_default();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "php {args:?} failed: {:?}", out.status);
    writer.join().unwrap().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_tokenizer_and_the_merge_agree_with_php() {
    let n = std::env::var("SP_SERIAL_CORPUS").unwrap_or_else(|_| "1500".into());
    let seed = std::env::var("SP_SERIAL_SEED").unwrap_or_else(|_| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        (t.as_nanos() % 1_000_000_007).to_string()
    });
    eprintln!("corpus: {n} sessions per format, SP_SERIAL_SEED={seed}");
    for (name, format) in [("php", Format::Php), ("php_serialize", Format::PhpSerialize), ("php_binary", Format::PhpBinary)] {
        let corpus = php(&["gen", name, &n, &seed], None);
        let (mut sessions, mut with_refs, mut triples, mut conflicts) = (0, 0, 0, 0);
        let mut check = String::new();
        for line in corpus.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "entries" => {
                    sessions += 1;
                    let data = hex(f[1]);
                    let got = entries(format, &data);
                    if f[2] == "1" {
                        with_refs += 1;
                        assert_eq!(got, Err(SerialError::References), "{name}: a session with references: {line}");
                        continue;
                    }
                    let got = got.unwrap_or_else(|e| panic!("{name}: PHP's encoding refused ({e}): {line}"));
                    let want: Vec<(Vec<u8>, Vec<u8>)> = f[3..]
                        .iter()
                        .map(|kv| {
                            let (k, v) = kv.split_once(':').unwrap();
                            (hex(k), hex(v))
                        })
                        .collect();
                    let got: Vec<(Vec<u8>, Vec<u8>)> = got.iter().map(|e| (e.key.to_vec(), e.value.to_vec())).collect();
                    assert_eq!(got, want, "{name}: keys and values as PHP wrote them: {line}");
                }
                "merge" => {
                    triples += 1;
                    let [base, mine, theirs, last, first] = [1, 2, 3, 4, 5].map(|i| hex(f[i]));
                    let overlap: usize = f[6].parse().unwrap();
                    for (on, want) in [(OnConflict::Last, &last), (OnConflict::First, &first)] {
                        let m = merge(Some(format), &base, &mine, &theirs, on);
                        assert!(!m.whole, "{name}: merged key by key: {line}");
                        assert_eq!(m.conflicts, overlap, "{name} {on:?}: conflicts counted: {line}");
                        check.push_str(&format!("{} {}\n", to_hex(&m.data), to_hex(want)));
                    }
                    conflicts += overlap;
                }
                other => panic!("unknown corpus line {other:?}"),
            }
        }
        let n: usize = n.parse().unwrap();
        assert_eq!(sessions, n, "{name}: every session of the corpus was read");
        // The corpus must exercise what it claims to: references, and merges with and without a conflict.
        assert!(with_refs > 0 && triples > n / 2 && conflicts > 0 && conflicts < triples, "{name}: {with_refs} {triples} {conflicts}");
        let verdict = php(&["check", name], Some(check.as_bytes()));
        let first = verdict.lines().next().unwrap_or("");
        assert_eq!(first, format!("checked {}, mismatches 0", 2 * triples), "{name}: PHP decoded the merged sessions:\n{verdict}");
        eprintln!("{name}: {sessions} sessions ({with_refs} with references), {triples} merges ({conflicts} with a conflict): PHP agrees");
    }
}
