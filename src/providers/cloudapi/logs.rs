//! `stratus logs release/NAME -n NS [--follow]`: the log of a Release's newest deployment (the
//! one a failed build left, which is not the live one), or with `--live` of the live one,
//! from `GET /v1/logs?deployment_id=` and, with `--follow`, the live tail
//! `GET /v1/logs/stream` (server-sent events), so a user sees why a build failed without curl.
//! It reads the Release, its ProviderConfig and the key's Secret with the caller's kubeconfig,
//! and spends one request (two with `--follow`) of the key's budget.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use kube::Api;

use super::api::release::Release;
use super::client::{CloudApiClient, default_endpoint, default_limits};
use super::model::LogLine;
use crate::cloud::throttle::Priority;

/// `stratus logs` flags.
#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// The Release: release/NAME (or NAME).
    pub release: String,
    /// The Release's namespace.
    #[arg(
        short = 'n',
        long,
        env = "STRATUS_LOGS_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Then keep printing the project's new lines as they are written (the API's live tail:
    /// the rest of this build, and the builds of later commits), until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// The live deployment's log instead of the newest deployment's (they differ after a
    /// failed build: the previous release stays live).
    #[arg(long)]
    pub live: bool,
    /// Only lines of this level and more severe ones.
    #[arg(long, value_parser = ["debug", "info", "warn", "error"])]
    pub level: Option<String>,
}

/// One server-sent event: its `id` and `data` (lines joined with `\n`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// Server-sent events from a byte stream fed in chunks (the text/event-stream format:
/// `field: value` lines, comments starting with `:`, an empty line ending an event).
#[derive(Default)]
pub struct EventParser {
    buffer: Vec<u8>,
    current: Event,
    has_data: bool,
}

/// The longest line kept while waiting for its end: a peer that never ends one is cut off.
const MAX_LINE: usize = 1024 * 1024;

impl EventParser {
    /// Feed `chunk`; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> anyhow::Result<Vec<Event>> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.current));
                }
                self.current = Event::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            if self.current.data.len() > MAX_LINE {
                bail!("the log stream sent an event larger than {MAX_LINE} bytes");
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.current.event = Some(value.to_string()),
                "id" => self.current.id = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        if self.buffer.len() > MAX_LINE {
            bail!("the log stream sent a line longer than {MAX_LINE} bytes");
        }
        Ok(out)
    }
}

/// A log line as printed: `TIME LEVEL MESSAGE`.
pub fn format_line(l: &LogLine) -> String {
    format!(
        "{} {:<5} {}",
        l.timestamp.as_deref().unwrap_or("-"),
        l.level.as_deref().unwrap_or("-"),
        l.message
    )
}

/// `stratus logs`.
pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let name = args
        .release
        .strip_prefix("release/")
        .or_else(|| args.release.strip_prefix("releases/"))
        .unwrap_or(&args.release);
    if name.contains('/') {
        bail!("{:?} is not release/NAME", args.release);
    }
    let kube = crate::tree::client(args.kubeconfig.as_ref()).await?;
    let releases: Api<Release> = Api::namespaced(kube.clone(), &args.namespace);
    let release = releases
        .get_opt(name)
        .await
        .with_context(|| format!("reading Release {}/{name}", args.namespace))?
        .with_context(|| format!("Release {name} not found in namespace {}", args.namespace))?;
    let at = release.status.as_ref().and_then(|s| s.at_provider.as_ref());
    let newest = at.and_then(|a| a.recent.first());
    let live = at.and_then(|a| a.current.as_ref());
    let deployment = if args.live { live } else { newest.or(live) }
        .map(|d| d.id.clone())
        .with_context(|| {
            format!("Release {name} has no deployment yet: see `kubectl describe release {name}`")
        })?;
    let config = &release.spec.provider_config_ref.name;
    let (spec, key) = crate::engine::providers::read_provider_config(&kube, config).await?;
    // The operator's checks, before the key goes anywhere: this cloud's key only, and only to
    // an endpoint it would send it to.
    if spec.provider != crate::api::provider_config::Provider::CloudApi {
        bail!(
            "ProviderConfig {config} is for provider {}, not cloudapi: the Release names the wrong ProviderConfig",
            spec.provider.as_str()
        );
    }
    let dialect = spec
        .cloudapi
        .as_ref()
        .map(|c| c.dialect)
        .unwrap_or_default();
    spec.check_endpoint(default_endpoint(dialect))
        .map_err(|m| anyhow::anyhow!("ProviderConfig {config}: {m}"))?;
    let endpoint = spec
        .endpoint
        .clone()
        .unwrap_or_else(|| default_endpoint(dialect).to_string());
    let policy = spec
        .throttle_policy(&default_limits(dialect))
        .map_err(|m| anyhow::anyhow!("ProviderConfig {config}: {m}"))?;
    let client = CloudApiClient::new(dialect, &endpoint, key.clone(), policy)?;
    let lines = client
        .logs(&deployment, args.level.as_deref(), Priority::Write)
        .await?;
    let mut last = None;
    for l in &lines {
        println!("{}", format_line(l));
        last = l.id.clone();
    }
    if !args.follow {
        return Ok(());
    }
    let project = at.map(|a| a.id.clone()).unwrap_or_default();
    follow(&endpoint, &key, &project, args.level.as_deref(), last).await
}

/// The project's live tail, from after `last` (the id of the last line printed).
async fn follow(
    endpoint: &str,
    key: &crate::cloud::ApiKey,
    project: &str,
    level: Option<&str>,
    last: Option<String>,
) -> anyhow::Result<()> {
    let base = if endpoint.ends_with('/') {
        endpoint.to_string()
    } else {
        format!("{endpoint}/")
    };
    let mut url = reqwest::Url::parse(&base)
        .and_then(|u| u.join("v1/logs/stream"))
        .with_context(|| format!("the endpoint {endpoint:?} is not a URL"))?;
    url.query_pairs_mut().append_pair("project_id", project);
    if let Some(level) = level {
        url.query_pairs_mut().append_pair("level", level);
    }
    let mut request = reqwest::Client::new()
        .get(url)
        .bearer_auth(key.expose())
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(id) = last {
        request = request.header("Last-Event-ID", id);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("the log stream: {}", e.without_url()))?;
    if !response.status().is_success() {
        bail!("the log stream answered HTTP {}", response.status());
    }
    let mut parser = EventParser::default();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("the log stream: {}", e.without_url()))?
    {
        for event in parser.feed(&chunk)? {
            match serde_json::from_str::<LogLine>(&event.data) {
                Ok(line) => println!("{}", format_line(&line)),
                Err(_) => println!("{}", event.data),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunks_with_comments_and_multi_line_data() {
        let mut p = EventParser::default();
        assert!(
            p.feed(b": keep-alive\n\nevent: log\nid: log_1")
                .unwrap()
                .is_empty()
        );
        let events = p
            .feed(b"\ndata: {\"message\":\"a\"}\r\n\r\ndata: one\ndata: two\n\n")
            .unwrap();
        assert_eq!(
            events,
            [
                Event {
                    event: Some("log".into()),
                    id: Some("log_1".into()),
                    data: "{\"message\":\"a\"}".into()
                },
                Event {
                    event: None,
                    id: None,
                    data: "one\ntwo".into()
                },
            ]
        );
    }

    #[test]
    fn a_line_that_never_ends_is_cut_off() {
        let mut p = EventParser::default();
        assert!(p.feed(&vec![b'x'; MAX_LINE + 1]).is_err());
    }
}
