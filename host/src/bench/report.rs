//! The benchmark's results: rows printed as they come (progress on a
//! terminal), then a table, and a Markdown section with the command, date
//! and machine that replaces the results part of `BENCHMARKS.md`.

use std::io::Write;
use std::path::Path;

/// Where the generated results start and end in `BENCHMARKS.md`.
pub const BEGIN: &str = "<!-- bench:results begin (written by the benchmark; edit outside) -->";
/// See [`BEGIN`].
pub const END: &str = "<!-- bench:results end -->";

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// The part of the benchmark.
    pub section: &'static str,
    /// What was measured.
    pub metric: String,
    /// The figure.
    pub value: String,
    /// What it is compared with: a baseline from the same run, or a target.
    pub reference: String,
    /// The ratio to the baseline, or whether the target is met.
    pub verdict: String,
}

/// All rows of one run.
#[derive(Debug)]
pub struct Report {
    /// The command that produced it.
    pub command: String,
    rows: Vec<Row>,
}

impl Report {
    /// An empty report for `command`.
    pub fn new(command: &str) -> Self {
        Self {
            command: command.to_owned(),
            rows: Vec::new(),
        }
    }

    /// Add a row and print it.
    pub fn add(&mut self, row: Row) {
        eprintln!(
            "  {:<58} {:>16}   {} {}",
            row.metric, row.value, row.reference, row.verdict
        );
        self.rows.push(row);
    }

    /// Say what runs next.
    pub fn progress(&self, text: &str) {
        eprintln!("▸ {text}");
        let _ = std::io::stderr().flush();
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The results as Markdown: command, date, machine, then a table per section.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("Command: `{}`\n\n", self.command));
        out.push_str(&format!("Run: {} UTC\n\n", utc_now()));
        out.push_str(&format!("Machine: {}\n", machine()));
        // Sections in the order they first appear, each with all its rows.
        let mut sections: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !sections.contains(&row.section) {
                sections.push(row.section);
            }
        }
        for section in sections {
            out.push_str(&format!(
                "\n### {section}\n\n| measure | value | compared with | ratio / target |\n|---|---|---|---|\n"
            ));
            for row in self.rows.iter().filter(|r| r.section == section) {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    row.metric, row.value, row.reference, row.verdict
                ));
            }
        }
        out
    }

    /// Replace the results part of `file` (between [`BEGIN`] and [`END`]),
    /// or append one.
    pub fn write_into(&self, file: &Path) -> std::io::Result<()> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let section = format!("{BEGIN}\n\n{}\n{END}", self.markdown());
        let updated = match (text.find(BEGIN), text.find(END)) {
            (Some(start), Some(end)) if end > start => {
                format!("{}{section}{}", &text[..start], &text[end + END.len()..])
            }
            _ => format!("{}\n\n{section}\n", text.trim_end()),
        };
        std::fs::write(file, updated)
    }
}

/// CPU model, cores, memory and kernel, read from `/proc`.
pub fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    format!(
        "{cores} cores ({cpu}), {memory_gib:.0} GiB, Linux {kernel}, wasp {}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Now as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let seconds = crate::clock::now_ms() / 1000;
    let days = seconds / 86_400;
    let (hour, minute) = ((seconds % 86_400) / 3600, (seconds % 3600) / 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_replace_their_section_and_nothing_else() {
        let dir =
            std::env::temp_dir().join(format!("wasp-report-{}", crate::event::new_event_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("BENCHMARKS.md");
        std::fs::write(
            &file,
            format!("# Title\n\nprose\n\n{BEGIN}\nold\n{END}\n\nmore prose\n"),
        )
        .unwrap();
        let mut report = Report::new("cargo bench");
        report.add(Row {
            section: "Pull queue",
            metric: "pairs/s".into(),
            value: "12000".into(),
            reference: "target ≥ 10000".into(),
            verdict: "met".into(),
        });
        report.write_into(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# Title\n\nprose\n\n"));
        assert!(text.ends_with("\n\nmore prose\n"));
        assert!(!text.contains("old"));
        assert!(text.contains("| pairs/s | 12000 | target ≥ 10000 | met |"));
        assert!(text.contains("Command: `cargo bench`"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn dates_are_civil() {
        assert!(utc_now().starts_with("20"));
        assert_eq!(utc_now().len(), 16);
    }
}
