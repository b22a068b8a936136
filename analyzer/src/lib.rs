//! The weightwatch analyzer: reads LLM API request logs and flags accounts,
//! and clusters of accounts, whose query patterns look like distillation.
//!
//! Data flows one way: [`ingest`] (files → validated rows, bad rows counted)
//! → [`store`] (compact rows; prompt text reduced by [`text`] to hashes,
//! flags and topics) → [`features`] (per account, key and cluster) →
//! [`cluster`] (linking accounts) → [`score`] (signals, families, verdicts) →
//! [`alerts`] and [`output`]. [`eval`] measures it all against labels.
//!
//! Call [`run`] for the whole pipeline.

pub mod alerts;
pub mod analysis;
mod attach;
pub mod cluster;
mod community;
pub mod config;
pub mod continuity;
pub mod eval;
pub mod features;
pub mod group;
pub mod ingest;
mod joining;
pub mod model;
pub mod onset;
pub mod output;
mod par;
pub mod parts;
pub mod requests;
pub mod row;
pub mod score;
mod slices;
pub mod text;
pub mod training;

use config::AnalyzerConfig;
use eve::event::{Event, EventKind, StatsEvent};
use eve::sink::EventSink;
use std::path::PathBuf;

/// What to analyse and where the tables go.
#[derive(Clone, Debug, Default)]
pub struct AnalyzeOptions {
    /// Files or directories of request logs.
    pub logs: Vec<PathBuf>,
    /// `scores.csv` output.
    pub scores_out: Option<PathBuf>,
    /// Feature table (Parquet) output.
    pub features_out: Option<PathBuf>,
    /// Labels to evaluate against.
    pub labels: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// `sensor_id` of the events.
    pub sensor_id: Option<String>,
    /// Labels (`account_id,label,scenario`, e.g. analysts' verdicts
    /// exported by the dashboard) to refit the model with before scoring;
    /// the refit shrinks toward the model in use, so a few hundred labels
    /// adjust it rather than replace it.
    pub fit_labels: Option<PathBuf>,
    /// Where to write the refitted model.
    pub model_out: Option<PathBuf>,
    /// Skip the time-to-detect replay of an evaluation (it re-analyses
    /// every prefix of the input).
    pub no_replay: bool,
}

/// Why the analysis could not finish. Bad rows are never an error: they
/// are counted in the [`Report`].
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Listing the inputs failed.
    #[error("listing inputs: {0}")]
    Inputs(#[source] std::io::Error),
    /// No input file was found.
    #[error("no log files found in the given paths")]
    NoInput,
    /// The phrase sets could not be built.
    #[error(transparent)]
    Text(#[from] text::PhraseSetError),
    /// The sink refused an event.
    #[error("emitting events: {0}")]
    Sink(#[from] eve::sink::SinkError),
    /// Writing scores or features failed.
    #[error(transparent)]
    Output(#[from] output::OutputError),
    /// Reading labels failed.
    #[error(transparent)]
    Labels(#[from] eval::LabelError),
    /// The model could not be read, fitted or written.
    #[error(transparent)]
    Model(#[from] model::ModelError),
}

/// The model a configuration asks for: its `model` file or the bundled
/// one, with `score_threshold` overriding the threshold when set.
pub fn configured_model(cfg: &AnalyzerConfig) -> Result<model::Model, model::ModelError> {
    let mut m = if cfg.model.trim().is_empty() {
        model::Model::bundled()
    } else {
        model::Model::load(std::path::Path::new(cfg.model.trim()))?
    };
    if let Some(t) = cfg.score_threshold {
        m.threshold = t;
    }
    Ok(m)
}

/// The model inputs of every labelled account of an analysis, with its
/// label and scenario: the rows a model is fitted on, and the peer
/// baselines they are measured against.
///
/// The baselines are those of the accounts not labelled `distill`
/// (labelled benign, or unlabelled and counted in the analysis's own
/// baselines), no cluster weighing more than
/// [`model::inputs::CLUSTER_WEIGHT`] accounts, as in the analysis
/// ([`model::inputs::operator_weights`]): a model is fitted against its
/// sets' benign population, which is what the analysis's trimmed
/// baselines approximate without labels
/// (see `peer_trim_score`). `reference` is the model in use's reference
/// population, for peer groups too small to judge on their own.
pub fn labelled_inputs(
    analysis: &analysis::Analysis,
    labels: &eval::Labels,
    reference: &model::inputs::Peers,
) -> (Vec<training::LabelledRow>, model::inputs::Peers) {
    let in_population: Vec<bool> = analysis
        .accounts
        .iter()
        .map(|a| {
            a.features.requests > 0
                && match labels.get(&a.account_id) {
                    Some((attack, _)) => !*attack,
                    None => a.peer,
                }
        })
        .collect();
    let weights = model::inputs::operator_weights(
        analysis.accounts.len(),
        analysis
            .clusters
            .iter()
            .map(|c| c.cluster.members.as_slice()),
        &in_population,
    );
    let benign: Vec<(&features::Features, f64)> = analysis
        .accounts
        .iter()
        .zip(&in_population)
        .zip(weights)
        .filter(|((_, inside), _)| **inside)
        .map(|((a, _), w)| (&a.features, w))
        .collect();
    let peers = model::inputs::Peers::of(&benign, reference);
    let rows = analysis
        .accounts
        .iter()
        .filter(|a| a.features.requests > 0)
        .filter_map(|a| {
            labels
                .get(&a.account_id)
                .map(|(attack, scenario)| training::LabelledRow {
                    account: a.account_id.clone(),
                    inputs: peers.inputs(&a.features),
                    distill: *attack,
                    scenario: scenario.clone(),
                })
        })
        .collect();
    (rows, peers)
}

/// Read the logs into the request store: files found, rows parsed and
/// reduced (bad ones counted), far-dated rows dropped, grouped by account.
/// With `progress`, a bar on stderr advances by input bytes (returned so
/// the caller can reuse it for the analysis).
fn read_requests(
    logs: &[PathBuf],
    cfg: &AnalyzerConfig,
    progress: bool,
) -> Result<
    (
        requests::Requests,
        ingest::IngestReport,
        Option<indicatif::ProgressBar>,
    ),
    AnalyzeError,
> {
    let inputs = ingest::collect_files(logs).map_err(AnalyzeError::Inputs)?;
    if inputs.files.is_empty() {
        return Err(AnalyzeError::NoInput);
    }
    let text = text::TextAnalyzer::new()?;
    let mut store = requests::Requests::default();
    let bar = progress.then(|| {
        let total: u64 = inputs
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} reading logs {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} eta {eta}",
        ) {
            b.set_style(style);
        }
        b
    });
    let mut report = ingest::ingest(&inputs.files, cfg, &mut store, &text, bar.as_ref());
    report.note_skipped(&inputs.skipped, cfg.bad_row_examples);
    report.far_timestamps = store.finish(features::DAY_MS, par::threads(cfg.threads));
    report.rows -= report.far_timestamps;
    Ok((store, report, bar))
}

/// Read and analyse logs (no outputs): the store and the analysis.
pub fn load_and_analyze(
    logs: &[PathBuf],
    cfg: &AnalyzerConfig,
    model: &model::Model,
) -> Result<(requests::Requests, analysis::Analysis, ingest::IngestReport), AnalyzeError> {
    let (store, report, _) = read_requests(logs, cfg, false)?;
    let analysis = analysis::analyze(&store, i64::MAX, cfg, model);
    Ok((store, analysis, report))
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    /// Input files, rows, bad rows.
    pub ingest: ingest::IngestReport,
    /// The analysis (per account and cluster).
    pub analysis: analysis::Analysis,
    /// Alerts emitted.
    pub alerts: usize,
    /// The evaluation, when labels were given.
    pub evaluation: Option<eval::Evaluation>,
    /// Where the time went.
    pub timings: Timings,
}

/// Seconds spent in each phase of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Reading, parsing, validating and reducing the rows (text features
    /// included), and sorting them by time.
    pub ingest: f64,
    /// Features, clusters and verdicts.
    pub analysis: f64,
    /// Alerts to the sink, scores and feature tables.
    pub output: f64,
    /// The evaluation against labels (with the time-to-detect replay).
    pub evaluation: f64,
}

impl Report {
    /// Accounts flagged (alone, by a key or through a cluster).
    pub fn flagged_accounts(&self) -> usize {
        self.analysis
            .accounts
            .iter()
            .filter(|a| a.flagged())
            .count()
    }

    /// Clusters flagged as a whole.
    pub fn flagged_clusters(&self) -> usize {
        self.analysis.clusters.iter().filter(|c| c.flagged).count()
    }

    /// A few lines for the end of a run.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "analyzed {} rows from {} files ({} bytes); {} bad rows/file problems\n{} accounts, {} flagged; {} clusters, {} flagged; {} alerts",
            self.ingest.rows,
            self.ingest.files.len(),
            self.ingest.bytes,
            self.ingest.bad_total(),
            self.analysis.accounts.len(),
            self.flagged_accounts(),
            self.analysis.clusters.len(),
            self.flagged_clusters(),
            self.alerts
        );
        if self.ingest.far_timestamps > 0 {
            s.push_str(&format!(
                "\n{} valid rows dated far outside the bulk of the input were not analysed",
                self.ingest.far_timestamps
            ));
        }
        if self.ingest.rows_over_limit > 0 {
            s.push_str(&format!(
                "\n{} valid rows beyond max_rows were not analysed",
                self.ingest.rows_over_limit
            ));
        }
        for (reason, n) in &self.ingest.bad_by_reason {
            s.push_str(&format!("\n  bad: {reason}: {n}"));
        }
        for e in &self.ingest.examples {
            s.push_str(&format!(
                "\n  {}:{}: {} {}",
                e.file.display(),
                e.line,
                e.reason,
                e.excerpt
            ));
        }
        s
    }
}

/// Read the logs, analyse, emit alerts to `sink`, write the tables, and
/// evaluate when labels are given.
pub fn run(
    opts: &AnalyzeOptions,
    cfg: &AnalyzerConfig,
    sink: &mut dyn EventSink,
) -> Result<Report, AnalyzeError> {
    let t0 = std::time::Instant::now();
    let mut timings = Timings::default();
    let (store, ingest, bar) = read_requests(&opts.logs, cfg, opts.progress)?;
    timings.ingest = t0.elapsed().as_secs_f64();
    if let Some(b) = &bar {
        b.set_style(indicatif::ProgressStyle::default_spinner());
        b.set_message("analysing: features, clusters, scores");
    }
    let mut model = configured_model(cfg)?;
    let mut analysis = analysis::analyze(&store, i64::MAX, cfg, &model);
    if let Some(p) = &opts.fit_labels {
        let labels = eval::read_labels(p)?;
        let (rows, _) = labelled_inputs(&analysis, &labels, &model.reference_peers());
        let (x, y): (Vec<Vec<f64>>, Vec<bool>) =
            rows.into_iter().map(|r| (r.inputs, r.distill)).unzip();
        let n_pos = y.iter().filter(|l| **l).count();
        let fit = model::FitOptions {
            prior: Some(model.clone()),
            target_fpr: model.target_fpr,
            l2: model.l2,
            reference: model.reference_peers(),
            description: format!(
                "{} refitted on {} ({} distill, {} benign accounts of {})",
                model.fitted_on,
                p.display(),
                n_pos,
                y.len() - n_pos,
                opts.logs
                    .iter()
                    .map(|l| l.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ..Default::default()
        };
        model = model::fit(&x, &y, &fit)?;
        if let Some(t) = cfg.score_threshold {
            model.threshold = t;
        }
        if let Some(out) = &opts.model_out {
            model.save(out)?;
        }
        analysis = analysis::analyze(&store, i64::MAX, cfg, &model);
    }
    timings.analysis = t0.elapsed().as_secs_f64() - timings.ingest;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let events = alerts::all(&analysis, &store, cfg, &model);
    let alerts = events.len();
    for mut e in events {
        if let Some(id) = &opts.sensor_id {
            e.sensor_id = Some(id.clone());
        }
        sink.emit(&e)?;
    }
    let mut stats = StatsEvent::default();
    stats.stats.version = Some(env!("CARGO_PKG_VERSION").to_string());
    stats.stats.add("analyzer", "rows", ingest.rows);
    stats.stats.add("analyzer", "bad_rows", ingest.bad_total());
    stats
        .stats
        .add("analyzer", "far_timestamps", ingest.far_timestamps);
    stats
        .stats
        .add("analyzer", "accounts", analysis.accounts.len() as u64);
    stats.stats.add(
        "analyzer",
        "flagged",
        analysis.accounts.iter().filter(|a| a.flagged()).count() as u64,
    );
    stats.stats.add(
        "analyzer",
        "clusters_flagged",
        analysis.clusters.iter().filter(|c| c.flagged).count() as u64,
    );
    let mut se = Event::new(eve::Timestamp::now(), EventKind::Stats(stats));
    se.sensor_id = opts.sensor_id.clone();
    sink.emit(&se)?;
    sink.flush()?;
    if let Some(p) = &opts.scores_out {
        output::write_scores(&analysis, p)?;
    }
    if let Some(p) = &opts.features_out {
        let windows = analysis::windows(&store, &analysis, cfg);
        output::write_features(&analysis, &windows, &store, cfg, p)?;
    }
    timings.output = t0.elapsed().as_secs_f64() - timings.ingest - timings.analysis;
    let evaluation = match &opts.labels {
        Some(p) => {
            let labels = eval::read_labels(p)?;
            Some(eval::evaluate(
                &store,
                &analysis,
                &labels,
                cfg,
                (!opts.no_replay).then_some(&model),
            ))
        }
        None => None,
    };
    timings.evaluation =
        t0.elapsed().as_secs_f64() - timings.ingest - timings.analysis - timings.output;
    Ok(Report {
        ingest,
        analysis,
        alerts,
        evaluation,
        timings,
    })
}
