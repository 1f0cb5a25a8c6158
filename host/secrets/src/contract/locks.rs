//! Locks: exclusion within a process, timeouts, release on drop.

use super::*;

/// A held lock excludes another handle of the tenant and another opening of the storage;
/// other names and other tenants are independent, and values stay writable.
pub fn lock_excludes_other_holders_in_one_process(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "lock-one-process");
    let guard = t.lock("refresh", Duration::from_secs(1)).unwrap();
    assert_eq!(guard.name(), "refresh");
    assert_lock_timeout("same handle", t.lock("refresh", Duration::ZERO));
    let second_handle = tenant(&*backend, "lock-one-process");
    assert_lock_timeout(
        "second handle",
        second_handle.lock("refresh", Duration::ZERO),
    );
    let elsewhere = open(h, Limits::default());
    let there = tenant(&*elsewhere, "lock-one-process");
    assert_lock_timeout("second opening", there.lock("refresh", Duration::ZERO));

    let other_name = t.lock("models", Duration::ZERO).unwrap();
    let other_tenant = tenant(&*backend, "lock-one-process-other")
        .lock("refresh", Duration::ZERO)
        .unwrap();
    t.set("k", b"v").unwrap();
    drop(guard);
    let again = there.lock("refresh", Duration::from_secs(10)).unwrap();
    drop((again, other_name, other_tenant));
    clear(&*t);
}

/// Waiting for a held lock gives up with `LockTimeout` once the timeout has passed (and not
/// before); a zero timeout is one attempt.
pub fn lock_times_out(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "lock-timeout");
    let guard = t.lock("refresh", Duration::ZERO).unwrap();
    let other = tenant(&*backend, "lock-timeout");
    let began = Instant::now();
    assert_lock_timeout("300 ms", other.lock("refresh", Duration::from_millis(300)));
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(30), "waited {waited:?}");
    let began = Instant::now();
    assert_lock_timeout("zero", other.lock("refresh", Duration::ZERO));
    assert!(began.elapsed() < Duration::from_secs(10));
    drop(guard);
}

/// Dropping the guard releases the lock: at once for anyone in this process, and a thread
/// waiting for it gets it.
pub fn lock_is_released_on_drop(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let elsewhere = open(h, Limits::default());
    let t = tenant(&*backend, "lock-release");
    let there = tenant(&*elsewhere, "lock-release");
    for _ in 0..3 {
        let guard = t.lock("refresh", Duration::ZERO).unwrap();
        drop(guard);
        drop(there.lock("refresh", Duration::ZERO).unwrap());
    }
    let guard = t.lock("refresh", Duration::ZERO).unwrap();
    let waiter = {
        let there = std::sync::Arc::clone(&there);
        thread::spawn(move || there.lock("refresh", Duration::from_secs(60)).map(drop))
    };
    thread::sleep(Duration::from_millis(50));
    drop(guard);
    waiter.join().unwrap().unwrap();
}
