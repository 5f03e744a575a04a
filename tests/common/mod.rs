//! Helpers shared by test files (each uses some of them): the file log's here, node processes'
//! in `nodes`.
#![allow(dead_code)]

pub mod disk_states;
pub mod nodes;

use std::path::{Path, PathBuf};
use tinyraftplus::core::{Payload, Seq};
use tinyraftplus::log::FsLog;
use tinyraftplus::log::{Encoder, Key};

/// The payloads from `from` on, as text (`-` for a blank entry, `config` for a configuration).
pub fn payloads(log: &FsLog, from: u64) -> Vec<String> {
    log.iter(Seq(from))
        .map(|e| match e.unwrap().payload {
            Payload::Data(d) => String::from_utf8(d.to_vec()).unwrap(),
            Payload::Blank => "-".into(),
            Payload::Config(_) => "config".into(),
        })
        .collect()
}

/// The segment files in `dir`, in name order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "seg")
}

/// The files in `dir` whose extension is `extension`, in name order.
pub fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// One of the three encoders, picked by a random byte.
pub fn encoder(which: u8) -> Encoder {
    match which % 3 {
        0 => Encoder::Plain,
        1 => Encoder::XxHash,
        _ => Encoder::Encrypted(Key::new([which; 32])),
    }
}

/// For a test of `FsLog` drawing `which`: every batch written past the page cache, those of
/// 300 bytes and more (which most single appends are not), or none.
pub fn direct(which: u8) -> usize {
    match (which / 3) % 3 {
        0 => 0,
        1 => 300,
        _ => usize::MAX,
    }
}

/// Property test cases: `PROPTEST_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default)
}
