//! The file log (FsLog). So far its pure parts: the on-disk record format ([`format`]) and
//! crash recovery as a decision table ([`recovery`]); the file IO builds on them.

pub mod format;
pub mod recovery;
