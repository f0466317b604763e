//! The operator under test: the real `stratus` binary as a child process, its /metrics, and
//! what the kernel says about it (/proc/PID/status and /proc/PID/stat).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Operator {
    child: Option<Child>,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
    pub started: Instant,
    http: reqwest::Client,
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
    pub threads: u64,
}

impl Mem {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Clock ticks per second of /proc/PID/stat times.
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl Operator {
    /// `stratus run --namespace NS` against `kubeconfig`, metrics on a free loopback port, output
    /// to `log_dir/<label>.log`.
    pub fn start(
        kubeconfig: &Path,
        namespace: &str,
        extra: &[&str],
        log_dir: &Path,
        label: &str,
    ) -> Operator {
        std::fs::create_dir_all(log_dir).expect("log dir");
        let port = free_port();
        let log = log_dir.join(format!("{label}.log"));
        let out = std::fs::File::create(&log).expect("operator log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        // The operator's own default log filter unless the bench is told otherwise.
        match std::env::var("STRATUS_BENCH_LOG") {
            Ok(filter) => {
                cmd.env("RUST_LOG", filter);
            }
            Err(_) => {
                cmd.env_remove("RUST_LOG");
            }
        }
        let child = cmd.spawn().expect("starting the operator");
        Operator {
            pid: child.id(),
            child: Some(child),
            port,
            log,
            started: Instant::now(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn answers(&self, path: &str) -> bool {
        self.http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Wait until the operator serves /healthz, then up to `readyz_grace` for /readyz (CRDs found,
    /// caches synced). Returns whether /readyz answered 200; when it does not, the operator has
    /// been given the grace period to start its watches.
    pub async fn wait_started(&mut self, timeout: Duration, readyz_grace: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.answers("/healthz").await {
            assert!(
                self.is_running(),
                "the operator exited; see {}",
                self.log.display()
            );
            assert!(
                Instant::now() < deadline,
                "the operator did not serve /healthz within {timeout:?}; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = Instant::now() + readyz_grace;
        loop {
            if self.answers("/readyz").await {
                return true;
            }
            if Instant::now() > deadline {
                eprintln!(
                    "bench: /readyz still answers 503 after {readyz_grace:?} (see {}); going on",
                    self.log.display()
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        match self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Completed reconciles (every result), from `controller_runtime_reconcile_total`.
    pub async fn reconciles(&self) -> u64 {
        sum_metric(&self.metrics().await, "controller_runtime_reconcile_total") as u64
    }

    /// User + system CPU time so far, from /proc/PID/stat.
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name (which may contain spaces) start at state (field 3).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime is field 14 and stime field 15 of the whole line: 11 and 12 after the name.
        let total = ticks(11) + ticks(12);
        Duration::from_secs_f64(total as f64 / clk_tck())
    }

    pub fn mem(&self) -> Mem {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Mem {
            rss_kib: field("VmRSS:"),
            hwm_kib: field("VmHWM:"),
            threads: field("Threads:"),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sum of every sample of `name` in a Prometheus text exposition.
pub fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// A sample of the operator at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub cpu: Duration,
    pub reconciles: u64,
}

impl Operator {
    pub async fn sample(&self) -> Sample {
        let reconciles = self.reconciles().await;
        Sample {
            at: Instant::now(),
            cpu: self.cpu(),
            reconciles,
        }
    }
}
