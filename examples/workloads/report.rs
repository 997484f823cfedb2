//! Measuring and reporting: percentiles, directory sizes, peak RSS, and the human table with
//! the Icechunk reference figures of WORKLOADS.md (1.1.21 and 2.3.0) next to floe's, with the
//! ratios.

use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value};

/// Error type of the runner.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result type of the runner.
pub type Res<T> = Result<T, BoxError>;

/// A failed self-check: the runner exits non-zero.
pub fn mismatch(what: impl Into<String>) -> BoxError {
    format!("VERIFICATION FAILED: {}", what.into()).into()
}

/// Milliseconds elapsed since `start`.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The `p`-th percentile (0..=100, nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of `values`.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// Mean of `values`.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Total bytes and number of files below `dir`.
pub fn dir_usage(dir: &Path) -> Res<(u64, u64)> {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                bytes += entry.metadata()?.len();
                files += 1;
            }
        }
    }
    Ok((bytes, files))
}

/// Peak resident set size of this process in MiB (`VmHWM`), if the kernel reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak RSS to the current RSS (Linux: `5` into `/proc/self/clear_refs`), so a
/// workload's peak is not the peak of an earlier one. Returns false when unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// One row of a workload's table.
pub struct Row {
    key: &'static str,
    value: f64,
    reference: Option<f64>,
    /// Icechunk 2.3.0's figure (WORKLOADS.md, or measured in the same run for W7).
    newest: Option<f64>,
    unit: &'static str,
}

/// The figures of one workload: JSON keys, table rows and target checks.
pub struct Report {
    name: &'static str,
    rows: Vec<Row>,
    json: Map<String, Value>,
    notes: Vec<String>,
    targets: Vec<(String, bool)>,
}

impl Report {
    /// An empty report for workload `name`.
    pub fn new(name: &'static str) -> Self {
        Report {
            name,
            rows: Vec::new(),
            json: Map::new(),
            notes: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// A named figure with its Icechunk reference (same unit), shown in the table and written
    /// to the JSON.
    pub fn figure(
        &mut self,
        key: &'static str,
        value: f64,
        reference: Option<f64>,
        unit: &'static str,
    ) {
        self.rows.push(Row {
            key,
            value,
            reference,
            newest: None,
            unit,
        });
        self.json.insert(key.to_string(), json_number(value));
    }

    /// Icechunk 2.3.0's figure for the row `key` (added before with [`Report::figure`]),
    /// printed in its own column with its ratio and written to the JSON under
    /// `icechunk_2_3_0`.
    pub fn newest(&mut self, key: &str, value: f64) {
        if let Some(row) = self.rows.iter_mut().find(|r| r.key == key) {
            row.newest = Some(value);
        }
        let references = self
            .json
            .entry("icechunk_2_3_0")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = references {
            map.insert(key.to_string(), json_number(value));
        }
    }

    /// An extra JSON value that is not shown in the table.
    pub fn extra(&mut self, key: &str, value: Value) {
        self.json.insert(key.to_string(), value);
    }

    /// A line printed under the table (and stored in the JSON under `notes`).
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// A target of issue 2's "Done means", checked and printed.
    pub fn target(&mut self, text: impl Into<String>, met: bool) {
        self.targets.push((text.into(), met));
    }

    /// Prints the table.
    pub fn print(&self) {
        println!();
        println!("== {} ==", self.name);
        println!(
            "{:<28} {:>12} {:>12} {:>7} {:>12} {:>7}  unit",
            "key", "floe", "ic 1.1.21", "ratio", "ic 2.3.0", "ratio"
        );
        let column = |reference: Option<f64>, value: f64| match reference {
            Some(r) => (fmt_num(r), format!("{:.3}", value / r)),
            None => ("-".to_string(), "-".to_string()),
        };
        for row in &self.rows {
            let (reference, ratio) = column(row.reference, row.value);
            let (newest, newest_ratio) = column(row.newest, row.value);
            println!(
                "{:<28} {:>12} {:>12} {:>7} {:>12} {:>7}  {}",
                row.key,
                fmt_num(row.value),
                reference,
                ratio,
                newest,
                newest_ratio,
                row.unit
            );
        }
        for (text, met) in &self.targets {
            println!(
                "  target {}: {}",
                if *met { "MET   " } else { "MISSED" },
                text
            );
        }
        for note in &self.notes {
            println!("  note: {note}");
        }
    }

    /// The JSON object of this workload.
    pub fn into_json(mut self) -> (String, Value) {
        if !self.notes.is_empty() {
            self.json
                .insert("notes".into(), Value::from(self.notes.clone()));
        }
        if !self.targets.is_empty() {
            let targets: Map<String, Value> = self
                .targets
                .iter()
                .map(|(t, met)| (t.clone(), Value::Bool(*met)))
                .collect();
            self.json.insert("targets".into(), Value::Object(targets));
        }
        (self.name.to_string(), Value::Object(self.json))
    }
}

fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        Value::from(value as i64)
    } else {
        Value::from((value * 1000.0).round() / 1000.0)
    }
}

fn fmt_num(value: f64) -> String {
    if value.abs() >= 1.0e6 {
        format!("{:.1}M", value / 1.0e6)
    } else if value.abs() >= 1000.0 || (value.abs() >= 10.0 && value.fract() == 0.0) {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}
