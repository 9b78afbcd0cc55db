//! The `care` command line: parse, then call into the library.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use care_core::config::Config;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::shell::clock::wall_clock_ms;

/// care — real-time CARE signals (satisfaction, activity decline,
/// reactivation, loyalty) from customer events in Kafka.
#[derive(Debug, Parser)]
#[command(name = "care", version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("CARE_GIT_SHA"), ", ", env!("CARE_BUILD_PROFILE"), " build)"), about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline in-process on a synthetic population (no broker).
    Demo {
        /// Customers in the synthetic population.
        #[arg(long, default_value_t = 50_000)]
        customers: u32,
        /// Days of activity to simulate (changes happen from day 70 to 30
        /// days before the end).
        #[arg(long, default_value_t = 180)]
        days: u32,
        /// Seed: the same seed gives the same population and alerts.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Partitions customers are spread over (by murmur2 of their id).
        #[arg(long, default_value_t = 8)]
        partitions: i32,
        /// Example outputs printed per signal type.
        #[arg(long, default_value_t = 2)]
        examples: usize,
        /// Config whose engine and detector settings to use (default: built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the final summary as one JSON line (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Run the service against Kafka.
    Run {
        /// Config file (TOML; see config/example.toml). Any key can be
        /// overridden from the environment as CARE_<SECTION>__<KEY>.
        #[arg(long, short)]
        config: PathBuf,
        /// Stable id of this process (`kafka.instance_id`): sets
        /// group.instance.id and transactional.id. Default: the config's, else the host name.
        #[arg(long, env = "CARE_INSTANCE_ID")]
        instance_id: Option<String>,
    },
    /// Run the engine over a JSON lines file and print the outputs as JSON lines.
    Replay {
        /// Config file (TOML; see config/example.toml). Any key can be
        /// overridden from the environment as CARE_<SECTION>__<KEY>.
        #[arg(long, short)]
        config: PathBuf,
        /// Input file, one record per line (`-` for standard input).
        /// Repeatable: several inputs are merged by event time, as `run`
        /// merges a task's topics.
        #[arg(long, short, required = true)]
        input: Vec<PathBuf>,
        /// Apply this source's mapping to the lines (default: canonical
        /// events). With several inputs, one per `--input`, in the same
        /// order (`canonical` for canonical events).
        #[arg(long)]
        source: Vec<String>,
        /// Partitions to route customers to, as `run` would see them.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Suppress signals triggered before this RFC 3339 instant.
        #[arg(long)]
        emit_from: Option<String>,
        /// After the input, advance stream time to this RFC 3339 instant.
        #[arg(long)]
        advance_to: Option<String>,
        /// Print alerts per signal per 1,000 customer-days to stderr.
        #[arg(long)]
        report: bool,
        /// Write the final state to this file, as `care state` prints it.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Write every customer's scorecard to this file, one JSON line
        /// each, as `/customers/{id}` answers (value figures included).
        #[arg(long)]
        scorecards: Option<PathBuf>,
    },
    /// Print the state restored from the changelog as JSON lines (one per task, one per customer).
    State {
        /// Config file (TOML; see config/example.toml). Any key can be
        /// overridden from the environment as CARE_<SECTION>__<KEY>.
        #[arg(long, short)]
        config: PathBuf,
        /// Only these partitions' tasks (repeatable; default: all).
        #[arg(long)]
        partition: Vec<i32>,
        /// Only this customer (read from the partition murmur2 gives its id).
        #[arg(long)]
        customer: Option<String>,
    },
    /// Fit BG/NBD and Gamma-Gamma to a file of order events and print the
    /// parameters as JSON; optionally each customer's predictions and a
    /// holdout check.
    Fit(FitArgs),
    /// Validate a config file and print what it resolved to.
    CheckConfig {
        /// Config file to check (also accepted as --config).
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        file: Option<PathBuf>,
        /// Config file to check.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Order events, one JSON object a line (gzip is recognised; `-` for standard input).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Last day of the calibration period, YYYY-MM-DD (inclusive, in the config's timezone).
    #[arg(long)]
    pub calibration_end: NaiveDate,
    /// Unit of recency, T and alpha.
    #[arg(long, default_value = "days", value_parser = ["days", "weeks"])]
    pub time_unit: String,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write one JSON line per customer with their summary and predictions.
    #[arg(long)]
    pub customers: Option<PathBuf>,
    /// Horizon of expected purchases and predicted CLV, days.
    #[arg(long, default_value_t = 365.0)]
    pub horizon_days: f64,
    /// Last day of a holdout period after the calibration end: adds a validation section.
    #[arg(long)]
    pub holdout_end: Option<NaiveDate>,
    /// Yearly discount rate of predicted CLV (0.1 = 10 %).
    #[arg(long, default_value_t = 0.0)]
    pub discount_rate_yearly: f64,
    /// Historic CLV lifespan, years.
    #[arg(long, default_value_t = 3.0, conflicts_with = "retention_rate")]
    pub lifespan_years: f64,
    /// Historic CLV lifespan from a yearly retention rate r: 1 / (1 - r) years.
    #[arg(long)]
    pub retention_rate: Option<f64>,
    /// Config whose timezone and source mapping to use (default: UTC, canonical events).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The config's source whose mapping to apply (needed when it has several).
    #[arg(long)]
    pub source: Option<String>,
}

fn parse_instant(flag: &str, s: &Option<String>) -> anyhow::Result<Option<i64>> {
    s.as_deref()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()).with_context(|| format!("{flag} {s:?} is not RFC 3339")))
        .transpose()
}

/// Runs a parsed command line. SIGTERM or Ctrl-C cancels one shutdown
/// token that `run`, `replay` and `demo` all watch.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    match cli.command {
        Command::Demo { customers, days, seed, partitions, examples, config, json } => {
            let cfg = match config {
                Some(p) => load(&p)?.0,
                None => Config::parse("", "defaults")?,
            };
            if partitions < 1 {
                bail!("--partitions must be at least 1");
            }
            let opts = crate::apps::demo::Options { customers, days, seed, partitions, examples, progress_secs: 1.0 };
            demo(cfg, opts, json, shutdown).await
        }
        Command::Run { config, instance_id } => {
            let mut cfg = load(&config)?.0;
            resolve_secret_files(&mut cfg)?;
            if let Some(id) = instance_id {
                cfg.kafka.instance_id = Some(id);
                cfg.validate()?;
            }
            cfg.kafka.instance_id.get_or_insert_with(crate::shell::instance::host_name);
            let listener = if cfg.http.listen.is_empty() {
                None
            } else {
                let l = tokio::net::TcpListener::bind(&cfg.http.listen).await.with_context(|| format!("cannot listen on http.listen {}", cfg.http.listen))?;
                tracing::info!(addr = %cfg.http.listen, "HTTP listening");
                Some(l)
            };
            crate::apps::run::run(cfg, listener, shutdown).await
        }
        Command::State { config, partition, customer } => {
            let mut cfg = load(&config)?.0;
            resolve_secret_files(&mut cfg)?;
            let partitions = (!partition.is_empty()).then_some(partition);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            tokio::task::block_in_place(|| crate::apps::state::run(&cfg, partitions, customer.as_deref(), &mut out))
        }
        Command::Replay { config, input, source, partitions, emit_from, advance_to, report, state, scorecards } => {
            let cfg = load(&config)?.0;
            if !source.is_empty() && source.len() != input.len() {
                bail!("{} --input and {} --source: give one --source per --input, in the same order, or none", input.len(), source.len());
            }
            let opts = crate::apps::replay::Options {
                source: None,
                partitions,
                emit_from_ms: parse_instant("--emit-from", &emit_from)?,
                advance_to_ms: parse_instant("--advance-to", &advance_to)?,
                state_out: state,
                scorecards_out: scorecards,
            };
            let mut readers = Vec::with_capacity(input.len());
            for path in &input {
                let reader: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
                    Box::new(std::io::stdin().lock())
                } else {
                    Box::new(std::io::BufReader::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
                };
                readers.push(reader);
            }
            let inputs = readers
                .iter_mut()
                .zip(&input)
                .enumerate()
                .map(|(i, (lines, path))| crate::apps::replay::InputFile { name: path.display().to_string(), source: source.get(i).cloned(), lines: lines.as_mut() })
                .collect();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let summary = tokio::task::block_in_place(|| crate::apps::replay::run_merged(&cfg, &opts, inputs, &mut out, wall_clock_ms(), &shutdown))?;
            for w in &summary.warnings {
                eprintln!("{w}");
            }
            if report {
                eprintln!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(())
        }
        Command::Fit(args) => tokio::task::block_in_place(|| fit(args)),
        Command::CheckConfig { file, config } => {
            let file = file.or(config).expect("clap requires one of FILE and --config");
            let (cfg, overrides) = load(&file)?;
            let resolved = toml::to_string_pretty(&redacted(cfg.clone()))?;
            let text = crate::apps::check_config::report(&file, &cfg, &overrides, &resolved)?;
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                // Piped into `head`: what was wanted was read.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => Ok(r?),
            }
        }
    }
}

/// A config file with the environment's config variables applied (see
/// `care_core::config::env`).
fn load(path: &std::path::Path) -> anyhow::Result<(Config, Vec<care_core::config::env::Override>)> {
    Ok(Config::load_with_env(path, std::env::vars())?)
}


fn fit(args: FitArgs) -> anyhow::Result<()> {
    use care_core::model::{clv::Lifespan, TimeUnit};
    let cfg = match &args.config {
        Some(p) => load(p)?.0,
        None => Config::parse("", "defaults")?,
    };
    let opts = crate::apps::fit::Options {
        calibration_end: args.calibration_end,
        holdout_end: args.holdout_end,
        unit: if args.time_unit == "weeks" { TimeUnit::Weeks } else { TimeUnit::Days },
        horizon_days: args.horizon_days,
        discount_rate_yearly: args.discount_rate_yearly,
        lifespan: args.retention_rate.map_or(Lifespan::Years(args.lifespan_years), Lifespan::Retention),
        source: args.source,
    };
    let mut input = FitFile { path: args.input.clone(), opened: false };
    let mut customers = match &args.customers {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?)),
        None => None,
    };
    let report = crate::apps::fit::run(&cfg, &opts, &mut input, customers.as_mut().map(|w| w as &mut dyn Write), wall_clock_ms())?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(p) = &args.output {
        std::fs::write(p, format!("{json}\n")).with_context(|| format!("cannot write {}", p.display()))?;
    }
    println!("{json}");
    Ok(())
}

/// `care fit`'s input file, which it may read twice; standard input (`-`)
/// only once.
struct FitFile {
    path: PathBuf,
    opened: bool,
}

impl crate::apps::fit::FitInput for FitFile {
    fn open(&mut self) -> std::io::Result<Box<dyn std::io::BufRead + '_>> {
        if self.opened && !self.reopens() {
            return Err(std::io::Error::other("standard input cannot be read twice"));
        }
        self.opened = true;
        open_maybe_gzip(&self.path).map_err(|e| std::io::Error::other(format!("{e:#}")))
    }

    fn reopens(&self) -> bool {
        self.path.as_os_str() != "-"
    }
}

/// Opens a file (or standard input for `-`), decompressing it when it
/// starts with the gzip magic bytes.
fn open_maybe_gzip(path: &std::path::Path) -> anyhow::Result<Box<dyn std::io::BufRead>> {
    use std::io::BufRead;
    let mut raw: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
    };
    if raw.fill_buf().with_context(|| format!("cannot read {}", path.display()))?.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(std::io::BufReader::new(flate2::bufread::MultiGzDecoder::new(raw))));
    }
    Ok(raw)
}

/// Options that hold secrets are shown as `<redacted>`.
fn redacted(mut cfg: Config) -> Config {
    cfg.kafka.options = cfg.kafka.options.redacted();
    cfg
}

/// `kafka.options` keys ending in `_file` (e.g. `"sasl.password_file"`)
/// name a file holding the option's value (a mounted Kubernetes secret):
/// its content, without a final newline, becomes the option.
fn resolve_secret_files(cfg: &mut Config) -> anyhow::Result<()> {
    let files: Vec<(String, String)> = cfg.kafka.options.iter().filter(|(k, _)| k.ends_with("_file")).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, path) in files {
        let option = key.trim_end_matches("_file").to_string();
        if cfg.kafka.options.contains_key(&option) {
            bail!("kafka.options sets both \"{option}\" and \"{key}\"; keep one");
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("kafka.options.\"{key}\": cannot read {path}"))?;
        cfg.kafka.options.remove(&key);
        cfg.kafka.options.insert(option, text.strip_suffix('\n').unwrap_or(&text).to_string());
    }
    Ok(())
}

async fn demo(mut cfg: Config, opts: crate::apps::demo::Options, json: bool, shutdown: CancellationToken) -> anyhow::Result<()> {
    eprintln!("care demo: {} customers, {} days, seed {}, {} partitions (Ctrl-C stops)", opts.customers, opts.days, opts.seed, opts.partitions);
    let (summary, examples) = tokio::task::spawn_blocking(move || {
        let mut err = std::io::stderr().lock();
        crate::apps::demo::with_own_fit(&mut cfg, &opts, &mut err)?;
        let r = crate::apps::demo::run(&cfg, &opts, &shutdown, &mut err)?;
        let mut out = std::io::stdout().lock();
        crate::apps::demo::print_report(&mut out, &r.0, &r.1, &cfg)?;
        out.flush()?;
        Ok::<_, std::io::Error>(r)
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    drop(examples);
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn shutdown_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                token.cancel();
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received, shutting down"),
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    token.cancel();
}
