//! Opening a damaged log for a node that peers can rebuild (Protocol-Aware Recovery, Alagappan
//! et al., FAST 2018, in its simplest form): the valid prefix is kept, everything from the
//! damage on is dropped, and the log is marked catching up (`HardState::catching_up`), so the
//! node neither votes nor campaigns until a leader has sent it the rest. Safe while a quorum
//! holds every committed entry intact; when a majority lost the same entries, no leader can be
//! elected (the nodes that lost them do not vote) and the cluster waits rather than lose them.

use super::error::LogError;
use super::fslog::{FsLog, FsLogOptions};
use super::recovery::Case;
use std::path::Path;

/// What [`FsLog::open_repairing`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The entries from this seq on were dropped (0: the whole log).
    pub from: u64,
    /// What was wrong, as the failed open reported it.
    pub found: String,
}

impl FsLog {
    /// Opens the log; if it is damaged (corrupt records or segments, or lost durable entries),
    /// opens it again keeping what survives up to the first damage, catching up, and says what
    /// it dropped. A wrong key or encoder is a setting, not damage: it is returned as an error,
    /// as is anything else that is not damage.
    pub fn open_repairing(
        dir: impl AsRef<Path>,
        name: &str,
        options: FsLogOptions,
    ) -> Result<(FsLog, Option<Repair>), LogError> {
        let dir = dir.as_ref();
        let (repair_from, found) = match FsLog::open(dir, name, options.clone()) {
            Ok(log) => return Ok((log, None)),
            Err(LogError::Corrupt(corruption)) if !matches!(corruption.case, Case::WrongKey | Case::WrongEncoder) => {
                // Before anything is cut: what it knew committed past the damage is evidence.
                FsLog::keep_survivors(dir, name, &options, corruption.seq)?;
                (corruption.seq, corruption.to_string())
            }
            Err(error @ LogError::Lost { prefix_survives: true, .. }) => (u64::MAX, error.to_string()),
            Err(error @ LogError::Lost { prefix_survives: false, .. }) => {
                // The first entries are gone: what is left cannot start the log. Start empty.
                FsLog::del(dir, name)?;
                (0, error.to_string())
            }
            Err(error) => return Err(error),
        };
        let log = FsLog::open(dir, name, FsLogOptions { repair_from: Some(repair_from), ..options })?;
        let from = repair_from.min(log.seq().map_or(log.first().0, |s| s.0 + 1));
        Ok((log, Some(Repair { from, found })))
    }
}
