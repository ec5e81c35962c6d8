#![deny(clippy::missing_trait_methods)]
//! The metrics layer: wraps any store, forwards every call unchanged, and counts what it saw into a
//! `crate::metrics::Registry` (the process group's shared counters): reads, writes, touches and
//! destroys with their bytes, storage errors by kind and place (`StoreError::kind()` / `at()`), round
//! trips (the difference of the inner handle's `round_trips()` across each call) and the session
//! layer's `Event`s (requests, locks taken and their wait, lock timeouts, refused writes).
//!
//! Counting is a relaxed atomic add in shared memory: no round trip, no lock, no system call.

use std::time::{Duration, Instant};

use crate::id::SessionId;
use crate::lock::Token;
use crate::metrics::{self, Counter, EngineKind, Registry};
use crate::store::users::{Client, Count, Listed, User, Users};
use crate::store::{Acquire, Busy, Collect, Event, Expect, Expiry, Loaded, Pooled, Refusal, Result, Store, StoreError, Touched, Written};

pub struct Metrics {
    inner: Box<dyn Store>,
    engine: EngineKind,
    counters: &'static Registry,
    /// The inner handle's round trips counted so far.
    trips_seen: u64,
}

impl Metrics {
    pub fn new(inner: Box<dyn Store>, engine: EngineKind, counters: &'static Registry) -> Self {
        let trips_seen = inner.round_trips();
        Metrics { inner, engine, counters, trips_seen }
    }

    fn add(&self, c: Counter, n: u64) {
        self.counters.add(self.engine, c, n);
    }

    /// After every call: the round trips it made, and its error if it failed.
    fn counted<T>(&mut self, r: Result<T>) -> Result<T> {
        let trips = self.inner.round_trips();
        if trips > self.trips_seen {
            self.add(Counter::RoundTrips, trips - self.trips_seen);
        }
        self.trips_seen = trips;
        if let Err(e) = &r {
            count_error(self.counters, self.engine, e);
        }
        r
    }

    fn read(&self, loaded: Option<&Loaded>) {
        self.add(Counter::Reads, 1);
        if let Some(l) = loaded {
            self.add(Counter::BytesRead, l.data.len() as u64);
        }
    }
}

/// A storage error, by its kind and place.
pub fn count_error(counters: &Registry, engine: EngineKind, e: &StoreError) {
    counters.storage_error(engine, e.kind().name(), e.at());
}

fn cause(r: Refusal) -> metrics::Refusal {
    match r {
        Refusal::LockLost => metrics::Refusal::LockLost,
        Refusal::Conflict => metrics::Refusal::Conflict,
        Refusal::TooLarge => metrics::Refusal::TooLarge,
        Refusal::Storage => metrics::Refusal::StorageError,
    }
}

impl Pooled for Metrics {
    fn reusable(&self) -> bool {
        self.inner.reusable()
    }

    fn still_valid(&mut self) -> bool {
        self.inner.still_valid()
    }
}

impl Collect for Metrics {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        // Only reached through `collector`, which answers Some only when the inner store collects.
        let r = self.inner.collector().map_or(Ok(0), |c| c.gc(exp));
        self.counted(r)
    }
}

/// The per-user index, forwarded with its round trips and errors counted.
impl Users for Metrics {
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        let r = self.inner.users().map_or(Ok(None), |u| u.bound(id, exp));
        self.counted(r)
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, exp: Expiry) -> Result<()> {
        let r = self.inner.users().map_or(Ok(()), |u| u.bind(id, user, client, exp));
        self.counted(r)
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let r = self.inner.users().map_or(Ok(Vec::new()), |u| u.list(user, exp));
        self.counted(r)
    }

    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let r = self.inner.users().map_or(Ok(false), |u| u.end(id, exp));
        if let Ok(true) = r {
            self.add(Counter::Destroys, 1);
        }
        self.counted(r)
    }

    fn count_active(&mut self, within: Duration) -> Result<Count> {
        let r = self.inner.users().map_or(Ok(Count::NeedsScan), |u| u.count_active(within));
        self.counted(r)
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        let r = match self.inner.users() {
            Some(u) => u.secret(),
            None => Ok([0; 32]),
        };
        self.counted(r)
    }
}

impl Store for Metrics {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let r = self.inner.load(id, exp);
        if let Ok(l) = &r {
            self.read(l.as_ref());
        }
        self.counted(r)
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        let r = self.inner.lock_and_load(id, owner, lock_expire, exp);
        if let Ok(Acquire::Locked(l)) = &r {
            self.read(l.as_ref());
        }
        self.counted(r)
    }

    fn wait_for_release(&mut self, id: &SessionId, busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        let r = self.inner.wait_for_release(id, busy, deadline, attempt);
        self.counted(r)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        let r = self.inner.lock_holder(id);
        self.counted(r)
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let r = self.inner.save(id, data, expect, owner, exp);
        if let Ok(Written::Done(_)) = &r {
            self.add(Counter::Writes, 1);
            self.add(Counter::BytesWritten, data.len() as u64);
        }
        self.counted(r)
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        let r = self.inner.touch(id, owner, exp);
        if let Ok(Touched::Done) = &r {
            self.add(Counter::Touches, 1);
        }
        self.counted(r)
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        let r = self.inner.unlock(id, owner);
        self.counted(r)
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        let r = self.inner.destroy(id, owner);
        if r.is_ok() {
            self.add(Counter::Destroys, 1);
        }
        self.counted(r)
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let r = self.inner.exists(id, exp);
        self.counted(r)
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        if self.inner.collector().is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn storage_id(&self, id: &SessionId) -> SessionId {
        self.inner.storage_id(id)
    }

    fn users(&mut self) -> Option<&mut dyn Users> {
        if self.inner.users().is_some() {
            Some(self)
        } else {
            None
        }
    }

    fn round_trips(&self) -> u64 {
        self.inner.round_trips()
    }

    fn event(&mut self, e: &Event) {
        match *e {
            Event::Started => self.add(Counter::Requests, 1),
            Event::LockAcquired { waited } => self.counters.lock_acquired(self.engine, waited),
            Event::LockTimedOut { .. } => self.add(Counter::LockTimeouts, 1),
            Event::Refused(why) => self.counters.refused(self.engine, cause(why)),
            Event::Merged { conflicts } => {
                self.add(Counter::Merges, 1);
                self.add(Counter::MergeConflicts, conflicts as u64);
            }
            Event::OptimisticRead => {}
        }
        self.inner.event(e);
    }

    fn take_warnings(&mut self) -> Vec<crate::store::Caution> {
        self.inner.take_warnings()
    }

    // Listing is the tools' business, not a request's: not counted.
    fn scanner(&mut self) -> Option<&mut dyn crate::store::Scan> {
        self.inner.scanner()
    }

    // Batches are the tool's business (copy), not a request's: not counted.
    fn bulk(&mut self) -> Option<&mut dyn crate::store::Bulk> {
        self.inner.bulk()
    }
}

#[cfg(test)]
// The fake store below is a test double, not a layer: it keeps the defaults on purpose.
#[allow(clippy::missing_trait_methods)]
mod tests {
    use super::*;
    use crate::dsn::{Engine, SqliteOptions};
    use crate::metrics::Refusal as Cause;
    use crate::store::tests::{conformance, id, TempDir};
    use crate::store::ErrorKind;

    fn sqlite(dir: &TempDir) -> Engine {
        Engine::Sqlite(SqliteOptions {
            path: dir.path().join("m.sqlite"),
            busy_timeout: Duration::from_secs(5),
            synchronous_full: false,
            private_dir: false,
        })
    }

    /// The per-user index through the layer (forwarded, its round trips counted).
    #[test]
    fn forwards_the_user_index() {
        let dir = TempDir::new("metrics-users");
        let engine = sqlite(&dir);
        crate::store::users_tests::users_conformance(
            || Box::new(Metrics::new(crate::store::connect(&engine).unwrap(), EngineKind::Sqlite, registry())),
            "mu",
            true,
        );
    }

    fn registry() -> &'static Registry {
        Box::leak(Box::new(Registry::local()))
    }

    #[test]
    fn conformance_over_sqlite() {
        let dir = TempDir::new("layer-metrics-conformance");
        let engine = sqlite(&dir);
        let counters = registry();
        let open = || {
            let inner = crate::store::connect(&engine).unwrap();
            Box::new(Metrics::new(inner, EngineKind::Sqlite, counters)) as Box<dyn Store>
        };
        assert!(!conformance(open), "as bare SQLite: gc deletes in one statement, no window to race");
        // The suite's traffic was counted, under SQLite only.
        let s = counters.snapshot();
        let sq = &s.engines[EngineKind::Sqlite as usize];
        assert!(sq.get(Counter::Reads) > 0 && sq.get(Counter::Writes) > 0 && sq.get(Counter::BytesWritten) > 0, "{sq:?}");
        assert!(sq.get(Counter::Destroys) > 0 && sq.get(Counter::Touches) > 0, "{sq:?}");
        assert!(s.engines.iter().filter(|e| e.engine != EngineKind::Sqlite).all(|e| Counter::ALL.iter().all(|&c| e.get(c) == 0)));
    }

    /// The stack over a network engine: Redis, the server scripts/services/redis.sh starts.
    #[test]
    fn conformance_over_redis() {
        let port = std::env::var("SP_REDIS_PORT").expect("SP_REDIS_PORT is not set: run the tests with `make test`");
        let prefix = format!("sp-test-{}:", Token::new().as_str());
        let engine = crate::dsn::parse(&format!("redis://127.0.0.1:{port}/0?prefix={prefix}"), std::path::Path::new("/tmp")).unwrap();
        let counters = registry();
        let open = || Box::new(Metrics::new(crate::store::connect(&engine).unwrap(), EngineKind::Redis, counters)) as Box<dyn Store>;
        crate::store::tests::conformance_ttl(open);
        let s = counters.snapshot();
        let r = &s.engines[EngineKind::Redis as usize];
        assert!(r.get(Counter::Reads) > 0 && r.get(Counter::Writes) > 0 && r.get(Counter::BytesRead) > 0, "{r:?}");
    }

    /// What the fake store did, shared with the test.
    #[derive(Default)]
    struct State {
        trips: u64,
        fail: Option<StoreError>,
        stored: Option<Vec<u8>>,
        events: Vec<Event>,
    }

    /// A store that fails on demand and reports made-up round trips, to watch what the layer counts.
    struct Fake {
        state: std::sync::Arc<parking_lot::Mutex<State>>,
        collects: bool,
    }

    impl Fake {
        fn step(&mut self, trips: u64) -> Result<()> {
            let mut s = self.state.lock();
            s.trips += trips;
            s.fail.take().map_or(Ok(()), Err)
        }
    }

    impl Pooled for Fake {}

    impl Collect for Fake {
        fn gc(&mut self, _exp: Expiry) -> Result<u64> {
            self.step(5).map(|_| 2)
        }
    }

    impl Store for Fake {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn load(&mut self, _id: &SessionId, _exp: Expiry) -> Result<Option<Loaded>> {
            self.step(1)?;
            Ok(self.state.lock().stored.clone().map(|data| Loaded { data, version: crate::store::Version::new(1) }))
        }
        fn lock_and_load(&mut self, id: &SessionId, _o: &Token, _l: Duration, exp: Expiry) -> Result<Acquire> {
            self.load(id, exp).map(Acquire::Locked)
        }
        fn save(&mut self, _id: &SessionId, data: &[u8], _e: Expect, _o: Option<&Token>, _exp: Expiry) -> Result<Written> {
            self.step(2)?;
            self.state.lock().stored = Some(data.to_vec());
            Ok(Written::Done(crate::store::Version::new(2)))
        }
        fn touch(&mut self, _id: &SessionId, _o: Option<&Token>, _exp: Expiry) -> Result<Touched> {
            self.step(1).map(|_| Touched::Done)
        }
        fn unlock(&mut self, _id: &SessionId, _o: &Token) -> Result<()> {
            self.step(1)
        }
        fn destroy(&mut self, _id: &SessionId, _o: Option<&Token>) -> Result<()> {
            self.step(1)
        }
        fn exists(&mut self, _id: &SessionId, _exp: Expiry) -> Result<bool> {
            self.step(1).map(|_| true)
        }
        fn collector(&mut self) -> Option<&mut dyn Collect> {
            if self.collects {
                Some(self)
            } else {
                None
            }
        }
        fn round_trips(&self) -> u64 {
            self.state.lock().trips
        }
        fn event(&mut self, e: &Event) {
            self.state.lock().events.push(*e);
        }
    }

    #[test]
    fn counts_calls_bytes_trips_errors_and_events() {
        let counters = registry();
        // A pooled handle that already made 7 round trips: only those made through the layer count.
        let state = std::sync::Arc::new(parking_lot::Mutex::new(State { trips: 7, ..State::default() }));
        let fake = Fake { state: state.clone(), collects: true };
        let mut m = Metrics::new(Box::new(fake), EngineKind::Memcached, counters);
        let (sid, t, exp) = (id("m1"), Token::new(), Expiry::new(Duration::from_secs(60)));
        m.event(&Event::Started);
        assert!(matches!(m.lock_and_load(&sid, &t, Duration::from_secs(1), exp), Ok(Acquire::Locked(None))));
        m.event(&Event::LockAcquired { waited: Duration::from_millis(200) });
        m.save(&sid, b"0123456789", Expect::Absent, Some(&t), exp).unwrap();
        assert_eq!(m.load(&sid, exp).unwrap().unwrap().data, b"0123456789");
        m.touch(&sid, None, exp).unwrap();
        m.destroy(&sid, None).unwrap();
        m.exists(&sid, exp).unwrap();
        assert_eq!(m.collector().expect("forwarded").gc(exp), Ok(2));
        m.event(&Event::LockTimedOut { waited: Duration::from_secs(1) });
        m.event(&Event::Refused(Refusal::TooLarge));
        m.event(&Event::Refused(Refusal::Conflict));
        m.event(&Event::Merged { conflicts: 0 });
        m.event(&Event::Merged { conflicts: 3 });
        assert_eq!(m.round_trips(), 7 + 1 + 2 + 1 + 1 + 1 + 1 + 5);

        // Failures: counted by kind and place, and not as reads or writes.
        let fail = |e: StoreError| state.lock().fail = Some(e);
        fail(StoreError::new(ErrorKind::TooLarge, "memcached://10.0.0.1:11211", "too big"));
        assert!(m.save(&sid, b"xx", Expect::Any, None, exp).is_err());
        fail(StoreError::new(ErrorKind::Timeout, "memcached://10.0.0.1:11211", "slow"));
        assert!(m.load(&sid, exp).is_err());
        fail(StoreError::new(ErrorKind::Timeout, "memcached://10.0.0.1:11211", "slow"));
        assert!(m.unlock(&sid, &t).is_err());

        let s = counters.snapshot();
        let e = &s.engines[EngineKind::Memcached as usize];
        let got: Vec<(Counter, u64)> = Counter::ALL.iter().map(|&c| (c, e.get(c))).collect();
        use Counter::*;
        assert_eq!(
            got,
            [
                (Requests, 1),
                (Reads, 2),
                (Writes, 1),
                (Touches, 1),
                (Destroys, 1),
                (LockAcquisitions, 1),
                (LockTimeouts, 1),
                (RoundTrips, 12 + 2 + 1 + 1),
                (BytesRead, 10),
                (BytesWritten, 10),
                (Merges, 2),
                (MergeConflicts, 3),
                (OldStoreReads, 0),
                (Migrated, 0),
            ]
        );
        assert_eq!(e.lock_wait.count(), 1);
        assert_eq!(e.lock_wait.buckets[4..6], [0, 1], "200 ms: above le=100 ms, within le=500 ms");
        assert_eq!(e.lock_wait.sum, Duration::from_millis(200));
        let refused: Vec<u64> = Cause::ALL.iter().map(|&c| e.refused(c)).collect();
        assert_eq!(refused, [0, 1, 1, 0]);
        let errors: Vec<(&str, &str, u64)> = e.errors.iter().map(|x| (&*x.kind, &*x.at, x.count)).collect();
        assert_eq!(errors, [("too_large", "memcached://10.0.0.1:11211", 1), ("timeout", "memcached://10.0.0.1:11211", 2)]);
        assert!(s.engines.iter().filter(|x| x.engine != EngineKind::Memcached).all(|x| x.get(Requests) == 0));
        // Every event reached the inner store too.
        let events = state.lock().events.clone();
        assert_eq!(events.len(), 7);
        assert_eq!(events[1], Event::LockAcquired { waited: Duration::from_millis(200) });
    }

    #[test]
    fn no_collector_when_the_engine_has_none() {
        let fake = Fake { state: Default::default(), collects: false };
        let mut m = Metrics::new(Box::new(fake), EngineKind::Redis, registry());
        assert!(m.collector().is_none());
    }
}
