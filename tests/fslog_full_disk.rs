//! A nearly full disk: zeros written ahead of small batches (a speed-up) never cost a record
//! that fits. Runs on a 2 MiB tmpfs mounted for the test, which needs root (as CI runs);
//! elsewhere it says so and does nothing, unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use tinyraftplus::core::{Seq, Term};
use tinyraftplus::log::{FsLog, FsLogOptions};

/// A small tmpfs, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(size: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap().keep();
        let options = format!("size={size}");
        match Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(&dir).status() {
            Ok(status) if status.success() => Some(Mount(dir)),
            _ => None,
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn a_record_that_fits_is_written_with_under_a_mebibyte_free() {
    let Some(mount) = Mount::new("2m") else {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root and must run this test");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    // Fill the disk to leave about 300 KiB.
    let filler = mount.0.join("filler");
    let leave = 300 << 10;
    let fill = free_bytes(&mount.0) - leave;
    std::fs::write(&filler, vec![1u8; fill as usize]).unwrap();
    assert!(free_bytes(&mount.0) < 1 << 20);
    let mut log = FsLog::open(&mount.0, "log", FsLogOptions::default()).unwrap();
    let mut appended = 0u64;
    for i in 0..100u64 {
        let seq = log.append(Term(1), Some(&[i as u8; 1000])).expect("a record that fits is written");
        assert_eq!(seq, Seq(i));
        appended += 1;
    }
    drop(log);
    let log = FsLog::open(&mount.0, "log", FsLogOptions::default()).unwrap();
    assert_eq!(log.seq(), Some(Seq(appended - 1)), "all of them durable");
}
