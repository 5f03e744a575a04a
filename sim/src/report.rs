//! What a failing run tells a person: the operations that cannot be ordered and the events
//! around them (text), the clients' history (JSON lines, for offline checkers), and a
//! self-contained HTML page drawing the history as a timeline per client with the faults and
//! the failing operations marked.

use crate::lincheck::{Completion, Operation};
use crate::Outcome;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;

const MS: f64 = 1e6;

/// The failure's explanation: for a linearizability failure, the operations that cannot be
/// ordered and the trace lines around them (those naming them, leaders, faults, crashes and
/// restarts, in their time window); otherwise the last events. `trace` is the run's trace.
pub fn text(outcome: &Outcome, trace: &[String]) -> String {
    let mut out = String::new();
    let Some(violation) = &outcome.linearizability else {
        // Snapshots restored or installed change a state machine at once: they are where a
        // state that differs tends to come from.
        let snapshots: Vec<&String> = trace
            .iter()
            .filter(|l| l.contains(": restore ") || (l.contains(": write w") && l.contains(" install ")))
            .collect();
        if !snapshots.is_empty() {
            out.push_str("snapshots restored and installed:\n");
            for line in snapshots.iter().rev().take(20).rev() {
                let _ = writeln!(out, "  {line}");
            }
        }
        out.push_str("last events:\n");
        for line in trace.iter().rev().take(40).rev() {
            let _ = writeln!(out, "  {line}");
        }
        return out;
    };
    let _ = writeln!(out, "operations that cannot be ordered (key {}):", violation.key);
    for line in &violation.lines {
        let _ = writeln!(out, "  {line}");
    }
    let culprits: Vec<&Operation> = violation.culprits.iter().map(|(i, _)| &outcome.history[*i]).collect();
    let _ = writeln!(out, "events around them:");
    for line in around(&culprits, trace) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The trace's time of a line (`    12.345ms ...`), in nanoseconds.
fn line_time(line: &str) -> Option<u64> {
    let (ms, _) = line.trim_start().split_once("ms ")?;
    ms.parse::<f64>().ok().map(|ms| (ms * MS) as u64)
}

/// The trace lines in the culprits' window that matter to them: the first lines naming each
/// culprit (its share of 80 lines, at least 2), and up to 40 leader changes and faults, in
/// trace order. Every culprit is named, however many there are.
fn around<'a>(culprits: &[&Operation], trace: &'a [String]) -> Vec<&'a String> {
    let start = culprits.iter().map(|op| op.invoke).min().unwrap_or(0);
    let end = culprits.iter().filter_map(|op| op.returned()).max().unwrap_or(start).max(start);
    let ids: Vec<String> = culprits.iter().map(|op| format!("#{}", op.request)).collect();
    let names = |line: &str, id: &str| {
        line.match_indices(id).any(|(at, _)| !line[at + id.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    let notable = ["fault", "crash", "start", "paused", "wiped", "heal", "Leader", "restore", "install"];
    let per_culprit = (80 / ids.len().max(1)).max(2);
    let (mut shown, mut notable_left) = (vec![0; ids.len()], 40);
    let mut keep = |line: &str| {
        let named: Vec<usize> = (0..ids.len()).filter(|i| names(line, &ids[*i])).collect();
        if named.iter().any(|i| shown[*i] < per_culprit) {
            named.iter().for_each(|i| shown[*i] += 1);
            return true;
        }
        let notable = named.is_empty() && notable.iter().any(|word| line.contains(word)) && notable_left > 0;
        notable_left -= usize::from(notable);
        notable
    };
    trace.iter().filter(|line| line_time(line).is_some_and(|t| t >= start && t <= end) && keep(line)).collect()
}

fn json_string(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the history as JSON lines, one operation each: `client`, `request`, `node`, `key`,
/// `read`, `command`, `status` (`returned`, `applied`: never answered but applied with this
/// `response`, `not_applied`, `unknown`), `response`, `invoke_ns`, `return_ns` (for `applied`:
/// when a node first applied it, by which time it had taken effect), `witness` (where the system
/// says it took effect, see [`Operation::witness`]; `null` if unknown).
pub fn write_history(path: &str, history: &[Operation]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in history {
        let (status, response, returned) = match &op.completion {
            Completion::Returned { at, response } => ("returned", json_string(response), at.to_string()),
            Completion::Applied { at, response } => ("applied", json_string(response), at.to_string()),
            Completion::NotApplied => ("not_applied", "null".into(), "null".into()),
            Completion::Unknown => ("unknown", "null".into(), "null".into()),
        };
        writeln!(
            file,
            "{{\"client\": {}, \"request\": {}, \"node\": {}, \"key\": {}, \"read\": {}, \"command\": {}, \
             \"status\": \"{status}\", \"response\": {response}, \"invoke_ns\": {}, \"return_ns\": {returned}, \
             \"witness\": {}}}",
            op.client,
            op.request,
            op.node,
            op.op.key,
            op.op.read,
            json_string(&op.op.command),
            op.invoke,
            op.witness.map_or("null".into(), |w| w.to_string())
        )?;
    }
    file.flush()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One operation's label: request id, command and answer.
fn label(op: &Operation) -> String {
    let answer = match &op.completion {
        Completion::Returned { response, .. } => String::from_utf8_lossy(response).into_owned(),
        Completion::Applied { response, .. } => {
            format!("{} (applied, never answered)", String::from_utf8_lossy(response))
        }
        Completion::NotApplied => "(never applied)".into(),
        Completion::Unknown => "(no answer)".into(),
    };
    let what = if op.op.read { "read" } else { "append" };
    format!("#{} {what} {} → {answer}", op.request, String::from_utf8_lossy(&op.op.command))
}

/// A timeline of `history` between `from` and `to` (nanoseconds), one row per client.
fn timeline(outcome: &Outcome, failing: &BTreeSet<usize>, from: u64, to: u64, width: f64) -> String {
    let clients = outcome.history.iter().map(|op| op.client + 1).max().unwrap_or(1);
    let (left, row) = (70.0, 26.0);
    let height = 30.0 + row * clients as f64 + 20.0;
    let span = (to - from).max(1) as f64;
    let x = |t: u64| left + (t.clamp(from, to) - from) as f64 / span * (width - left - 10.0);
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">");
    let _ = write!(svg, "<text x=\"4\" y=\"16\" class=\"axis\">faults</text>");
    for (at, kind) in outcome.fault_log.iter().filter(|(at, _)| *at >= from && *at <= to) {
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"6\" y2=\"22\" class=\"fault\"><title>{1:.3} ms: {2}</title></line>",
            x(*at),
            *at as f64 / MS,
            escape(kind)
        );
    }
    for client in 0..clients {
        let y = 30.0 + row * client as f64;
        let _ = write!(svg, "<text x=\"4\" y=\"{:.1}\" class=\"axis\">client {client}</text>", y + 16.0);
    }
    // An operation never answered is drawn until its client moved on (the client's timeout).
    let mut ends: Vec<u64> = outcome.history.iter().map(|op| op.returned().unwrap_or(to)).collect();
    let mut last: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    for (index, op) in outcome.history.iter().enumerate() {
        if let Some(previous) = last.insert(op.client, index) {
            if outcome.history[previous].returned().is_none() {
                ends[previous] = ends[previous].min(op.invoke);
            }
        }
    }
    for (index, op) in outcome.history.iter().enumerate() {
        let end = ends[index];
        if end < from || op.invoke > to {
            continue;
        }
        let y = 30.0 + row * op.client as f64 + 3.0;
        let (x0, x1) = (x(op.invoke), x(end));
        let class = match (failing.contains(&index), op.op.read, op.returned().is_some()) {
            (true, ..) => "op failing",
            (false, _, false) => "op unknown",
            (false, true, true) => "op read",
            (false, false, true) => "op append",
        };
        let returned = op.returned().map_or("never".into(), |at| format!("{:.3} ms", at as f64 / MS));
        let title = format!(
            "{} (client {}, via n{}, key {}; invoked {:.3} ms, returned {returned})",
            label(op),
            op.client,
            op.node,
            op.op.key,
            op.invoke as f64 / MS
        );
        let _ = write!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"20\" class=\"{class}\"><title>{}</title></rect>",
            (x1 - x0).max(1.5),
            escape(&title)
        );
        let fits = ((x1 - x0 - 6.0) / 6.0) as usize; // Characters of 10 px text.
        if fits >= 8 {
            let text: String = label(op).chars().take(fits).collect();
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{}</text>",
                x0 + 3.0,
                y + 14.0,
                escape(&text)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\" class=\"axis\">{:.3} ms</text><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" \
         text-anchor=\"end\">{:.3} ms</text></svg>",
        height - 4.0,
        from as f64 / MS,
        width - 10.0,
        height - 4.0,
        to as f64 / MS
    );
    svg
}

/// The HTML report of a run (needs no network: styles and drawing inline).
pub fn html(name: &str, outcome: &Outcome) -> String {
    let failing: BTreeSet<usize> =
        outcome.linearizability.iter().flat_map(|v| v.culprits.iter().map(|(index, _)| *index)).collect();
    let end = outcome.history.iter().filter_map(Operation::returned).max().unwrap_or(1).max(1);
    let mut page = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tinyraftplus-sim report</title><style>\
         body{font-family:sans-serif;margin:20px} .axis{font-size:11px;fill:#444} .label{font-size:10px;fill:#000}\
         .op{stroke:#333;stroke-width:0.5} .read{fill:#9cc3f0} .append{fill:#a6dba0} .unknown{fill:#ddd;\
         stroke-dasharray:3 2} .failing{fill:#f4a09c;stroke:#c00;stroke-width:2} .fault{stroke:#e08000;stroke-width:1.5}\
         td,th{padding:2px 8px;text-align:left;font-size:13px} tr.failing td{background:#fde0de}</style></head><body>\n",
    );
    let _ = writeln!(page, "<h1>Simulation {} — seed {}</h1>", escape(name), outcome.seed);
    match &outcome.failure {
        Some(failure) => {
            let _ = writeln!(
                page,
                "<p class=\"fail\"><b>FAIL {}</b> at step {}: {}</p>",
                escape(failure.invariant()),
                outcome.steps,
                escape(failure.detail())
            );
        }
        None => page.push_str("<p>passed</p>\n"),
    }
    let faults: Vec<String> = outcome.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(page, "<p>faults: {}</p>", escape(&faults.join(" ")));
    if let Some(violation) = &outcome.linearizability {
        let _ = writeln!(
            page,
            "<h2>Operations that cannot be ordered (key {})</h2>\n<table id=\"failing\">",
            violation.key
        );
        page.push_str("<tr><th>request</th><th>client</th><th>node</th><th>key</th><th>operation</th><th>invoked (ms)</th><th>returned (ms)</th></tr>\n");
        for (index, _) in &violation.culprits {
            let op = &outcome.history[*index];
            let returned = op.returned().map_or("never".into(), |at| format!("{:.3}", at as f64 / MS));
            let _ = writeln!(
                page,
                "<tr class=\"failing\"><td>#{}</td><td>{}</td><td>n{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{returned}</td></tr>",
                op.request,
                op.client,
                op.node,
                op.op.key,
                escape(&label(op)),
                op.invoke as f64 / MS
            );
        }
        page.push_str("</table>\n<ul>\n");
        for line in &violation.lines {
            let _ = writeln!(page, "<li>{}</li>", escape(line));
        }
        page.push_str("</ul>\n");
        let culprits: Vec<&Operation> = failing.iter().map(|i| &outcome.history[*i]).collect();
        let from = culprits.iter().map(|op| op.invoke).min().unwrap_or(0);
        let to = culprits.iter().filter_map(|op| op.returned()).max().unwrap_or(from).max(from + 1);
        let margin = (to - from) / 4 + 1_000_000;
        let _ = writeln!(
            page,
            "<h2>Around the failure</h2>\n{}",
            timeline(outcome, &failing, from.saturating_sub(margin), to + margin, 1400.0)
        );
        let _ = writeln!(page, "<h2>Events around them</h2>\n<pre>");
        for line in around(&culprits, &outcome.trace) {
            let _ = writeln!(page, "{}", escape(line));
        }
        page.push_str("</pre>\n");
    }
    let _ = writeln!(
        page,
        "<h2>Whole history ({} operations)</h2>\n{}",
        outcome.history.len(),
        timeline(outcome, &failing, 0, end, 1400.0)
    );
    page.push_str("<p>Blue: reads; green: appends; grey, dashed: never answered; red: the operations that cannot be ordered; orange ticks: faults (hover for details).</p>\n</body></html>\n");
    page
}

/// Writes [`html`] to `path`.
pub fn write_html(path: &str, name: &str, outcome: &Outcome) -> std::io::Result<()> {
    std::fs::write(path, html(name, outcome))
}
