//! A user's own state machine, simulated: a bank whose accounts move money between them.
//!
//! - `transfer <from> <to> <amount>` (appended) answers `ok`, or `insufficient` (and changes
//!   nothing) when `<from>` holds less than `<amount>`;
//! - `balance <account>` and `total` (reads) answer a number.
//!
//! The model is the bank's specification: balances start at 100, a transfer moves money only if
//! it is there, and the total never changes. With `buggy`, the state machine carries a planted
//! bug of the kind snapshots invite: its snapshot leaves out empty accounts (to save space), and
//! its restore only overwrites the accounts the snapshot lists, so an account that was emptied
//! comes back with the money it had before.

use bytes::Bytes;
use tinyraftplus::core::Seq;
use tinyraftplus_sim::lincheck::{Model, Op};
use tinyraftplus_sim::models::{Random, StateMachine, Workload};
use tinyraftplus_sim::Simulation;

/// How many accounts.
pub const ACCOUNTS: usize = 4;
/// Each account's opening balance.
pub const OPENING: i64 = 100;

/// The bank's state machine.
#[derive(Clone, Debug)]
pub struct Bank {
    balances: [i64; ACCOUNTS],
    buggy: bool,
}

impl Bank {
    /// A bank with every account at its opening balance.
    pub fn new(buggy: bool) -> Bank {
        Bank { balances: [OPENING; ACCOUNTS], buggy }
    }
}

fn account(word: Option<&str>) -> Result<usize, String> {
    let index: usize = word.and_then(|w| w.parse().ok()).ok_or_else(|| format!("bad account {word:?}"))?;
    (index < ACCOUNTS).then_some(index).ok_or_else(|| format!("no account {index}"))
}

/// A decoded command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Moves `amount` from one account to another, if it is there.
    Transfer {
        /// The account paying.
        from: usize,
        /// The account paid.
        to: usize,
        /// How much.
        amount: i64,
    },
    /// One account's balance.
    Balance(usize),
    /// The sum of all balances.
    Total,
}

impl Command {
    fn parse(bytes: &[u8]) -> Result<Command, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_string())?;
        let mut words = text.split(' ');
        match words.next() {
            Some("transfer") => {
                let (from, to) = (account(words.next())?, account(words.next())?);
                let amount = words.next().and_then(|w| w.parse().ok()).ok_or("bad amount")?;
                Ok(Command::Transfer { from, to, amount })
            }
            Some("balance") => Ok(Command::Balance(account(words.next())?)),
            Some("total") => Ok(Command::Total),
            _ => Err(format!("unknown command {text:?}")),
        }
    }
}

impl StateMachine for Bank {
    fn apply(&mut self, _first: Seq, entries: &[Option<Bytes>]) -> Result<Vec<Bytes>, String> {
        let mut answers = Vec::with_capacity(entries.len());
        for entry in entries {
            let answer = match entry.as_deref().map(Command::parse) {
                None => "",
                Some(Ok(Command::Transfer { from, to, amount })) if self.balances[from] >= amount => {
                    self.balances[from] -= amount;
                    self.balances[to] += amount;
                    "ok"
                }
                Some(Ok(Command::Transfer { .. })) => "insufficient",
                Some(_) => "bad command",
            };
            answers.push(Bytes::from_static(answer.as_bytes()));
        }
        Ok(answers)
    }

    fn read(&mut self, _seq: Option<Seq>, command: &[u8]) -> Result<Bytes, String> {
        let value = match Command::parse(command)? {
            Command::Balance(account) => self.balances[account],
            Command::Total => self.balances.iter().sum(),
            Command::Transfer { .. } => return Err("a transfer is not a read".into()),
        };
        Ok(Bytes::from(value.to_string()))
    }

    fn snapshot(&mut self) -> Option<Result<Box<dyn std::io::Read + Send>, String>> {
        let listed = self.balances.iter().enumerate().filter(|(_, balance)| !self.buggy || **balance != 0);
        let text: String = listed.map(|(account, balance)| format!("{account} {balance}\n")).collect();
        Some(Ok(Box::new(std::io::Cursor::new(text.into_bytes()))))
    }

    fn restore(&mut self, input: &mut dyn std::io::Read) -> Result<(), String> {
        let mut text = String::new();
        input.read_to_string(&mut text).map_err(|e| e.to_string())?;
        if !self.buggy {
            self.balances = [0; ACCOUNTS]; // The correct restore replaces the whole state.
        }
        for line in text.lines() {
            let mut words = line.split(' ');
            let account = account(words.next())?;
            self.balances[account] = words.next().and_then(|w| w.parse().ok()).ok_or("bad balance")?;
        }
        Ok(())
    }
}

/// A transfer's answer, or a read's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The transfer happened.
    Ok,
    /// The transfer was refused: not enough money.
    Insufficient,
    /// A balance or the total.
    Amount(i64),
}

/// The bank's specification.
#[derive(Clone, Copy, Debug, Default)]
pub struct BankModel;

impl Model for BankModel {
    type State = [i64; ACCOUNTS];
    type Input = Command;
    type Output = Answer;

    fn init(&self) -> [i64; ACCOUNTS] {
        [OPENING; ACCOUNTS]
    }

    fn input(&self, command: &[u8], _read: bool) -> Result<Command, String> {
        Command::parse(command)
    }

    fn output(&self, input: &Command, response: &[u8]) -> Result<Answer, String> {
        match (input, response) {
            (Command::Transfer { .. }, b"ok") => Ok(Answer::Ok),
            (Command::Transfer { .. }, b"insufficient") => Ok(Answer::Insufficient),
            (Command::Transfer { .. }, other) => Err(format!("transfer answered {:?}", String::from_utf8_lossy(other))),
            (_, number) => {
                let text = std::str::from_utf8(number).map_err(|_| "not text".to_string())?;
                text.parse().map(Answer::Amount).map_err(|_| format!("not a number: {text:?}"))
            }
        }
    }

    fn step(&self, state: &[i64; ACCOUNTS], input: &Command, output: Option<&Answer>) -> Option<[i64; ACCOUNTS]> {
        match *input {
            Command::Transfer { from, to, amount } => {
                let enough = state[from] >= amount;
                let mut next = *state;
                if enough {
                    next[from] -= amount;
                    next[to] += amount;
                }
                let expected = if enough { Answer::Ok } else { Answer::Insufficient };
                output.is_none_or(|answer| *answer == expected).then_some(next)
            }
            Command::Balance(account) => output.is_none_or(|a| *a == Answer::Amount(state[account])).then_some(*state),
            Command::Total => output.is_none_or(|a| *a == Answer::Amount(state.iter().sum())).then_some(*state),
        }
    }
}

/// Clients move 10 to 50 between random accounts (so accounts run dry now and then), and read
/// balances and the total (three times in ten). Every operation may touch every account: one key.
#[derive(Clone, Copy, Debug, Default)]
pub struct BankWorkload;

impl Workload for BankWorkload {
    fn next(&mut self, rng: &mut Random, client: usize) -> Op {
        if rng.below(10) < 3 {
            return self.final_read(rng, client);
        }
        let from = rng.below(ACCOUNTS as u64);
        let to = (from + 1 + rng.below(ACCOUNTS as u64 - 1)) % ACCOUNTS as u64;
        let amount = 10 * (rng.below(5) + 1);
        Op { key: 0, read: false, command: Bytes::from(format!("transfer {from} {to} {amount}")) }
    }

    fn final_read(&mut self, rng: &mut Random, _client: usize) -> Op {
        let command = match rng.below(ACCOUNTS as u64 + 1) {
            0 => "total".to_string(),
            account => format!("balance {}", account - 1),
        };
        Op { key: 0, read: true, command: Bytes::from(command) }
    }
}

/// The bank simulation (`buggy`: with the planted snapshot bug).
pub fn simulation(buggy: bool) -> Simulation {
    let name = if buggy { "bank_buggy" } else { "bank" };
    Simulation::new(name, move || Bank::new(buggy), || BankWorkload, BankModel)
}
