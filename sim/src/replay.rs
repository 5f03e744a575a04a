//! Replay files: a run's workload, seed, options and every random decision, as text. Running
//! one (`--replay FILE`) reproduces the run bit for bit, whatever the simulator's defaults or the
//! shrinker's edits were.
//!
//! ```text
//! tinyraftplus-sim replay 1
//! workload counter
//! args --seed 7 --nodes 3 --clients 2 --ops 40 --fault-ms 5000 --settle-ms 30000 --regime recoverable
//! skip 3 17          (client operations cut by the shrinker, by index)
//! decisions 1234
//! 9e3779b97f4a7c15 ...   (sixteen hex digits each, eight to a line)
//! ```

/// What a replay file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayFile {
    /// The simulation's name (`--workload`).
    pub workload: String,
    /// The command-line arguments that set the seed and options.
    pub args: Vec<String>,
    /// Every decision of the run, in order, and the operations it skipped.
    pub script: Script,
}

use crate::random::Script;

const HEADER: &str = "tinyraftplus-sim replay 1";

impl ReplayFile {
    /// The file's text.
    pub fn to_text(&self) -> String {
        let skipped: Vec<String> = self.script.skipped.iter().map(u64::to_string).collect();
        let mut text = format!(
            "{HEADER}\nworkload {}\nargs {}\nskip {}\ndecisions {}\n",
            self.workload,
            self.args.join(" "),
            skipped.join(" "),
            self.script.decisions.len()
        );
        for line in self.script.decisions.chunks(8) {
            let words: Vec<String> = line.iter().map(|value| format!("{value:016x}")).collect();
            text.push_str(&words.join(" "));
            text.push('\n');
        }
        text
    }

    /// Parses a file's text, saying what is wrong with it if anything is.
    pub fn parse(text: &str) -> Result<ReplayFile, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("not a replay file (its first line is not {HEADER:?})"));
        }
        let mut field = |name: &str| {
            let line = lines.next().ok_or(format!("no {name} line"))?;
            line.strip_prefix(name).map(str::trim).map(String::from).ok_or(format!("expected {name}, found {line:?}"))
        };
        let workload = field("workload")?;
        let args = field("args")?.split_whitespace().map(String::from).collect();
        let skip = field("skip")?;
        let skipped = skip.split_whitespace().map(|w| w.parse().map_err(|_| format!("not an operation: {w:?}")));
        let skipped = skipped.collect::<Result<_, String>>()?;
        let count: usize = field("decisions")?.parse().map_err(|_| "the decision count is not a number".to_string())?;
        let mut decisions = Vec::with_capacity(count);
        for word in lines.flat_map(str::split_whitespace) {
            decisions.push(u64::from_str_radix(word, 16).map_err(|_| format!("not a decision: {word:?}"))?);
        }
        if decisions.len() != count {
            return Err(format!("{} decisions where the file says {count}", decisions.len()));
        }
        Ok(ReplayFile { workload, args, script: Script { decisions, skipped, after_setup: false } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_back_what_was_written_and_damage_is_named() {
        let decisions = (0..19).map(|i| i * 0x0123_4567_89ab_cdef).collect();
        let script = Script { decisions, skipped: [3, 17].into(), after_setup: false };
        let file = ReplayFile { workload: "bank".into(), args: vec!["--seed".into(), "3".into()], script };
        assert_eq!(ReplayFile::parse(&file.to_text()), Ok(file.clone()));
        let text = file.to_text();
        assert!(ReplayFile::parse(&text.replacen("decisions 19", "decisions 20", 1))
            .unwrap_err()
            .contains("19 decisions"));
        assert!(ReplayFile::parse(&text.replacen("0000000000000000", "zz", 1)).unwrap_err().contains("zz"));
        assert!(ReplayFile::parse("hello").unwrap_err().contains("not a replay file"));
        assert!(ReplayFile::parse(HEADER).unwrap_err().contains("no workload line"));
        assert!(ReplayFile::parse(&text.replacen("skip 3 17", "skip 3 x", 1)).unwrap_err().contains("\"x\""));
    }
}
