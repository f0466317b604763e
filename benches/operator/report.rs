//! What the benchmark writes: CSV rows, Markdown sections, the machine it ran on.

use std::fmt::Write as _;
use std::path::Path;

/// One figure: `section,case,metric,value,unit` in results.csv.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub case: String,
    pub metric: &'static str,
    pub value: String,
    pub unit: &'static str,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// (title, Markdown body) in order.
    pub sections: Vec<(String, String)>,
    /// Convergence: (N, seconds to all Ready, floor from the calls made, floor from the
    /// minimum calls).
    pub convergence_points: Vec<(usize, f64, f64, f64)>,
    /// Steady state: (N, bulk GETs per resync, per-resource GETs per resync).
    pub steady_points: Vec<(usize, f64, f64)>,
    /// Things seen during the run that the reader should know.
    pub notes: Vec<String>,
}

impl Report {
    pub fn row(
        &mut self,
        section: &'static str,
        case: impl Into<String>,
        metric: &'static str,
        value: impl ToString,
        unit: &'static str,
    ) {
        self.rows.push(Row {
            section,
            case: case.into(),
            metric,
            value: value.to_string(),
            unit,
        });
    }

    /// The operator's CPU and peak RSS over a run, and the cloud calls it made by route.
    pub fn operator_rows(
        &mut self,
        section: &'static str,
        case: &str,
        cpu: std::time::Duration,
        hwm_mib: f64,
        routes: &[(String, u64)],
    ) {
        self.row(
            section,
            case,
            "operator_cpu",
            format!("{:.2}", cpu.as_secs_f64()),
            "s",
        );
        self.row(
            section,
            case,
            "operator_peak_rss",
            format!("{hwm_mib:.1}"),
            "MiB",
        );
        for (route, c) in routes {
            self.row(
                section,
                format!("{case} {route}"),
                "api_calls_by_route",
                c,
                "requests",
            );
        }
    }

    pub fn csv(&self) -> String {
        let mut out = String::from("section,case,metric,value,unit\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                r.section,
                csv_field(&r.case),
                r.metric,
                csv_field(&r.value),
                r.unit
            );
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The machine, as the report describes it.
pub struct Machine {
    pub nproc: usize,
    pub mem_total: String,
    pub cpu_model: String,
    pub kernel: String,
    pub date: String,
    pub rustc: String,
    pub git: String,
}

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn command_output(cmd: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut c = std::process::Command::new(cmd);
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total = first_line_value(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let git = match command_output("git", &["rev-parse", "--short", "HEAD"], Some(root)) {
            Some(rev) => {
                let dirty = command_output("git", &["status", "--porcelain", "src"], Some(root))
                    .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{rev} (with uncommitted changes under src/)")
                } else {
                    rev
                }
            }
            None => "unknown".into(),
        };
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            mem_total,
            cpu_model: first_line_value(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            date: jiff::Timestamp::now()
                .strftime("%Y-%m-%d %H:%M UTC")
                .to_string(),
            rustc: command_output(
                &std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()),
                &["--version"],
                None,
            )
            .unwrap_or_else(|| "unknown".into()),
            git,
        }
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// Thousands separators for counts.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
