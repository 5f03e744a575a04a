//! TimeoutLog: a deadline on every operation, and the log usable after any of them passes. A
//! "hung disk" is a job that waits on a channel: every outcome is decided by synchronisation,
//! not by how long anything takes.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::{FsLog, FsLogOptions, LogError, TimeoutLog, Timeouts};

/// Deadlines either short (for operations the test holds up) or far beyond any fsync.
fn open(dir: &std::path::Path, timeout: Duration) -> TimeoutLog {
    let log = FsLog::open(dir, "log", FsLogOptions::default()).unwrap();
    TimeoutLog::new(log, Timeouts::all(timeout)).unwrap()
}

const SHORT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(60);

#[test]
fn an_operation_still_queued_at_its_deadline_is_cancelled_and_the_log_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SHORT);
    let (release, hung) = mpsc::channel::<()>();
    let (running, started) = mpsc::channel::<()>();
    thread::scope(|scope| {
        let blocker = scope.spawn(|| {
            log.with("hung", LONG, move |_| {
                running.send(()).unwrap();
                hung.recv().unwrap();
                Ok(())
            })
        });
        started.recv().unwrap();
        let error = log.append(Term(1), Some(b"late")).unwrap_err();
        assert!(matches!(error, LogError::Timeout { op: "append", started: false }), "{error}");
        release.send(()).unwrap();
        blocker.join().unwrap().unwrap();
    });
    let seq = log.with("seq", LONG, |log| Ok(log.seq())).unwrap();
    assert_eq!(seq, None, "the cancelled append had no effect");
    assert_eq!(log.with("append", LONG, |log| log.append(Term(1), Some(b"next"))).unwrap(), Seq(0));
}

#[test]
fn an_operation_running_at_its_deadline_completes_and_the_error_says_it_may_have() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LONG);
    let (release, hung) = mpsc::channel::<()>();
    let error = log
        .with("slow append", SHORT, move |log| {
            hung.recv().unwrap();
            log.append(Term(1), Some(b"slow"))
        })
        .unwrap_err();
    assert!(matches!(error, LogError::Timeout { started: true, .. }), "{error}");
    assert!(error.to_string().contains("may still take effect"));
    release.send(()).unwrap();
    assert_eq!(log.seq().unwrap(), Some(Seq(0)), "it completed");
    assert_eq!(log.append(Term(1), Some(b"next")).unwrap(), Seq(1));
}

#[test]
fn bad_arguments_and_every_operation_go_through_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LONG);
    assert!(matches!(log.append_batch(Vec::new()), Err(LogError::Invalid(_))));
    assert_eq!(log.append_batch(vec![(Term(2), Some(b"a".to_vec())), (Term(2), None)]).unwrap(), Seq(0));
    assert!(matches!(log.append(Term(1), Some(b"old term")), Err(LogError::Invalid(_))));
    assert_eq!(log.txn(Some(Some(Seq(0))), vec![(Term(3), Some(b"b".to_vec()))]).unwrap(), Some(Seq(1)));
    assert_eq!(log.head().unwrap().unwrap().payload.data().unwrap().as_ref(), b"b");
    let seqs: Vec<u64> = log.iter(Seq(0)).unwrap().map(|e| e.unwrap().seq.0).collect();
    assert_eq!(seqs, [0, 1]);
    log.trim(Some(Seq(0))).unwrap();
    assert_eq!(log.read(Seq(1)).unwrap(), None);
    log.close().unwrap();
    let reopened = FsLog::open(dir.path(), "log", FsLogOptions::default()).unwrap();
    assert_eq!(reopened.seq(), Some(Seq(0)));
}
