//! The committed configuration saved apart from the log (`core::Write::Configuration`): a
//! repair that cuts the log, or a prefix removal, may take the configuration entries with them;
//! without this, a restarted node would fall back to `Config::nodes` (and a node of a cluster
//! grown from one could think itself alone).
//!
//! The file `<name>.config` holds one batch of one entry in the log's own format and encoder (checksummed,
//! and encrypted with the log's key when it has one). Written to a temporary file, synced,
//! renamed, the directory synced: a crash leaves the old file or the new one.

use super::error::LogError;
use super::format::{decode_batch, push_entry, BatchBuilder, Seal};
use super::fslog::FsLog;
use crate::core::{Entry, Payload};
use bytes::Bytes;
use std::fs;
use std::io;

impl FsLog {
    /// Saves `entry` (a committed configuration) as the one restored at open.
    pub fn save_committed_config(&mut self, entry: &Entry) -> Result<(), LogError> {
        if !matches!(entry.payload, Payload::Config(_)) {
            return Err(LogError::Invalid(format!("{entry} is not a configuration entry")));
        }
        let mut bytes = Vec::new();
        let nonce = self.nonce()?;
        let mut builder = BatchBuilder::default();
        builder.start(entry.seq.0);
        push_entry(&mut builder, entry);
        builder.finish(&mut bytes, &self.options.encoder, Seal { nonce, ..Seal::default() });
        self.write_atomically("config", &bytes)?;
        self.committed_config = Some(entry.clone());
        Ok(())
    }

    /// Loads the saved committed configuration, if any.
    pub(super) fn load_committed_config(&mut self) -> Result<(), LogError> {
        let path = self.dir.join(format!("{}.config", self.name));
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(LogError::Io { op: "read", path, source }),
        };
        let damaged = |detail: String| LogError::Damaged {
            path: path.clone(),
            detail: format!(
                "the saved committed configuration: {detail}; delete the file to go on without it (the node then \
                 uses the configurations its log holds, or Config::nodes)"
            ),
        };
        let bytes = Bytes::from(bytes);
        let encoder = &self.options.encoder;
        let batch = decode_batch(&bytes, encoder, 0, bytes.len()).map_err(|e| damaged(e.to_string()))?;
        if batch.size != bytes.len() || batch.count != 1 || !batch.has_config {
            return Err(damaged("not exactly one configuration entry".into()));
        }
        let mut entries = batch.entries(encoder, &bytes, 0).map_err(|e| damaged(e.to_string()))?;
        self.committed_config = entries.pop();
        Ok(())
    }
}
