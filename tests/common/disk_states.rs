//! A log directory's files as values, for crash tests that build the states a crash can leave.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use tinyraftplus::log::{FsLog, LogError};

/// Every file of a directory: name and bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

/// The files of `dir` now.
pub fn snapshot(dir: &Path) -> Files {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap()))
        .collect()
}

/// Makes `dir` hold exactly `files`.
pub fn restore(dir: &Path, files: &Files) {
    for entry in fs::read_dir(dir).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The state file with no segment length recorded in either slot (see `FsLog`'s module docs
/// for the slots: 64 bytes, the length is the seventh word, the checksum the eighth).
pub fn without_recorded_length(state: &[u8]) -> Vec<u8> {
    let mut state = state.to_vec();
    // Slots of 72 bytes: eight words (the length is the seventh), then their XXH3-64.
    for slot in state.chunks_exact_mut(72) {
        if xxhash_rust::xxh3::xxh3_64(&slot[..64]).to_le_bytes() == slot[64..72] {
            slot[48..56].fill(0);
            let checksum = xxhash_rust::xxh3::xxh3_64(&slot[..64]);
            slot[64..72].copy_from_slice(&checksum.to_le_bytes());
        }
    }
    state
}

/// Every entry of `log`: seq and payload (empty for blank entries).
pub fn read_all(log: &FsLog) -> Vec<(u64, Vec<u8>)> {
    log.iter(log.first())
        .map(|e| e.map(|e| (e.seq.0, e.payload.data().map(|d| d.to_vec()).unwrap_or_default())))
        .collect::<Result<_, LogError>>()
        .unwrap()
}
