//! FsLog against a model: random sequences of appends, batches, transactions (committed or
//! dropped), trims, prefix removals, iterations and reopenings, with every encoder and small
//! segments, must always hold exactly what a plain vector says. MemLog, given the same
//! operations, must too.

mod common;

use common::{cases, direct, encoder};
use proptest::prelude::*;
use tinyraftplus::core::{Entry, HardState, Payload, Seq, Term};
use tinyraftplus::log::Encoder;
use tinyraftplus::log::{FsLog, FsLogOptions, LogError, LogStore, MemLog};

#[derive(Clone, Debug)]
enum Op {
    /// One entry; `bump` raises the term; `None` is a blank entry.
    Append {
        bump: bool,
        len: Option<u8>,
    },
    Batch {
        bump: bool,
        lens: Vec<Option<u8>>,
    },
    /// A transaction that trims `back` entries off the end first (if any), appends, and
    /// commits or is dropped.
    Txn {
        back: Option<u8>,
        lens: Vec<Option<u8>>,
        commit: bool,
    },
    Trim {
        back: u8,
    },
    RemovePrefix {
        at: u8,
    },
    Iterate {
        from: u8,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop::option::weighted(0.9, 0u8..120);
    prop_oneof![
        4 => (any::<bool>(), len.clone()).prop_map(|(bump, len)| Op::Append { bump, len }),
        3 => (any::<bool>(), prop::collection::vec(len.clone(), 1..8)).prop_map(|(bump, lens)| Op::Batch { bump, lens }),
        2 => (prop::option::of(0u8..6), prop::collection::vec(len, 0..6), any::<bool>())
            .prop_map(|(back, lens, commit)| Op::Txn { back, lens, commit }),
        1 => (0u8..8).prop_map(|back| Op::Trim { back }),
        1 => any::<u8>().prop_map(|at| Op::RemovePrefix { at }),
        1 => any::<u8>().prop_map(|from| Op::Iterate { from }),
        1 => Just(Op::Reopen),
    ]
}

fn payload(seq: u64, len: Option<u8>) -> Option<Vec<u8>> {
    len.map(|len| (0..len).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i)).collect())
}

/// What the log must hold: entries `first..` with their terms and payloads.
struct Model {
    first: u64,
    entries: Vec<(u64, Option<Vec<u8>>)>,
}

impl Model {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn term(&self) -> u64 {
        self.entries.last().map_or(1, |(term, _)| *term)
    }

    fn truncate(&mut self, end: u64) {
        self.entries.truncate((end - self.first) as usize);
    }
}

fn entry_matches(entry: &Entry, model: &Model) -> bool {
    let (term, payload) = &model.entries[(entry.seq.0 - model.first) as usize];
    let data = match &entry.payload {
        Payload::Data(data) => Some(data.to_vec()),
        Payload::Blank => None,
        Payload::Config(_) => return false, // The model appends no configuration.
    };
    entry.term.0 == *term && data == *payload
}

fn check_memory(memory: &MemLog, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(memory.first().0, model.first);
    prop_assert_eq!(memory.entries().len(), model.entries.len());
    for entry in memory.entries() {
        prop_assert!(entry_matches(entry, model), "memory: seq {} differs", entry.seq);
    }
    prop_assert_eq!(
        LogStore::seq(memory).map(|s| s.0),
        model.end().checked_sub(1).filter(|_| !model.entries.is_empty())
    );
    Ok(())
}

fn check(log: &FsLog, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.first().0, model.first);
    prop_assert_eq!(log.seq().map(|s| s.0), model.end().checked_sub(1).filter(|_| !model.entries.is_empty()));
    prop_assert_eq!(log.last_term().map(|t| t.0), model.entries.last().map(|(t, _)| *t));
    Ok(())
}

fn check_all(log: &FsLog, model: &Model) -> Result<(), TestCaseError> {
    check(log, model)?;
    let entries: Vec<Entry> = log.iter(Seq(model.first)).collect::<Result<_, LogError>>().unwrap();
    prop_assert_eq!(entries.len(), model.entries.len());
    for entry in &entries {
        prop_assert!(entry_matches(entry, model), "seq {} differs", entry.seq);
    }
    Ok(())
}

/// `direct_writes_from` 0 writes every batch of a checksummed log past the page cache.
fn run(encoder: Encoder, direct_writes_from: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let options = FsLogOptions { encoder, segment_bytes: 400, direct_writes_from, ..FsLogOptions::default() };
    let mut log = FsLog::open(dir.path(), "model", options.clone()).unwrap();
    log.save_hard_state(HardState::new(Term(1000), None)).unwrap();
    let mut model = Model { first: 0, entries: Vec::new() };
    let mut memory = MemLog::new();
    for op in ops {
        match op {
            Op::Append { bump, len } => {
                let (seq, term) = (model.end(), model.term() + u64::from(bump));
                prop_assert_eq!(log.append(Term(term), payload(seq, len).as_deref()).unwrap(), Seq(seq));
                prop_assert_eq!(memory.append(Term(term), payload(seq, len).as_deref()).unwrap(), Seq(seq));
                model.entries.push((term, payload(seq, len)));
            }
            Op::Batch { bump, lens } => {
                let (first, term) = (model.end(), model.term() + u64::from(bump));
                let payloads: Vec<Option<Vec<u8>>> =
                    lens.iter().enumerate().map(|(i, len)| payload(first + i as u64, *len)).collect();
                let batch: Vec<(Term, Option<&[u8]>)> = payloads.iter().map(|p| (Term(term), p.as_deref())).collect();
                prop_assert_eq!(log.append_batch(&batch).unwrap(), Seq(first));
                prop_assert_eq!(memory.append_batch(&batch).unwrap(), Seq(first));
                model.entries.extend(payloads.into_iter().map(|p| (term, p)));
            }
            Op::Txn { back, lens, commit } => {
                let keep_end = back.map(|b| model.end().saturating_sub(u64::from(b)).max(model.first));
                let mut txn = log.txn().unwrap();
                let mut memory_txn = memory.txn();
                if let Some(end) = keep_end {
                    txn.trim(end.checked_sub(1).map(Seq)).unwrap();
                    memory_txn.trim(end.checked_sub(1).map(Seq)).unwrap();
                }
                let start = keep_end.unwrap_or(model.end());
                let term = model.term() + 1;
                let payloads: Vec<Option<Vec<u8>>> =
                    lens.iter().enumerate().map(|(i, len)| payload(start + i as u64, *len)).collect();
                for p in &payloads {
                    let seq = txn.append(Term(term), p.as_deref()).unwrap();
                    prop_assert_eq!(memory_txn.append(Term(term), p.as_deref()).unwrap(), seq);
                }
                if commit {
                    prop_assert_eq!(txn.commit().unwrap(), memory_txn.commit().unwrap());
                    model.truncate(start);
                    model.entries.extend(payloads.into_iter().map(|p| (term, p)));
                }
            }
            Op::Trim { back } => {
                let end = model.end().saturating_sub(u64::from(back));
                let result = log.trim(end.checked_sub(1).map(Seq));
                let memory_result = memory.trim(end.checked_sub(1).map(Seq));
                prop_assert_eq!(result.is_ok(), memory_result.is_ok());
                if end < model.first {
                    prop_assert!(matches!(result, Err(LogError::Invalid(_))));
                } else {
                    result.unwrap();
                    model.truncate(end);
                }
            }
            Op::RemovePrefix { at } => {
                let at = model.first + u64::from(at) % (model.entries.len() as u64 + 2);
                log.remove_prefix(Seq(at)).unwrap();
                let first = log.first().0;
                prop_assert!(first >= model.first && first <= at.max(model.first) + 1);
                prop_assert!(first < model.end() || first == model.first, "the last entry's segment stays");
                model.entries.drain(..(first - model.first) as usize);
                model.first = first;
                if let Some(last_removed) = first.checked_sub(1) {
                    memory.remove_prefix(Seq(last_removed));
                }
            }
            Op::Iterate { from } => {
                let from = model.first + u64::from(from) % (model.entries.len() as u64 + 1);
                let entries: Vec<Entry> = log.iter(Seq(from)).collect::<Result<_, LogError>>().unwrap();
                prop_assert_eq!(entries.len() as u64, model.end() - from);
                for entry in &entries {
                    prop_assert!(entry_matches(entry, &model), "seq {} differs", entry.seq);
                }
            }
            Op::Reopen => {
                let chain = log.chain();
                drop(log);
                log = FsLog::open(dir.path(), "model", options.clone()).unwrap();
                prop_assert_eq!(log.chain(), chain);
                check_all(&log, &model)?;
                log.recovered(16).unwrap().validate().unwrap();
            }
        }
        check(&log, &model)?;
        check_memory(&memory, &model)?;
    }
    check_all(&log, &model)
}

/// Cases per run (about two seconds); `PROPTEST_CASES` overrides.
const DEFAULT_CASES: u32 = 300;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(DEFAULT_CASES)))]

    #[test]
    fn the_file_log_always_holds_what_the_model_holds(which in any::<u8>(), ops in prop::collection::vec(op(), 1..40)) {
        run(encoder(which), direct(which), ops)?;
    }
}
