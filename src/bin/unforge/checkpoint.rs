//! Resumable training stages: a stage's weights and its record (the next step, the settings,
//! the losses, the seconds) saved every so many steps, so that a stopped run continues where
//! it stopped. `unforge train` and `unforge finetune` keep their checkpoints this way.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};
use unforge::error::{Error, Result};
use unforge::train::{Resume, Snapshot};
use unforge::weights::{StoredPrecision, TensorFile};

use crate::common::{mkdir, write_atomic};

/// A stage's saved state: the next step, the losses so far, the weights, and the training
/// seconds so far.
type Saved = (usize, Vec<Value>, TensorFile, f64);

/// One stage's checkpoint: `NAME-STEP.safetensors` (f32) and `NAME.json`.
pub struct Checkpoint {
    dir: PathBuf,
    name: String,
    settings: Value,
    /// The stage's length and the steps between saves.
    steps: usize,
    every: usize,
    /// Training seconds of this stage in earlier runs, and when this run's began.
    earlier_seconds: std::cell::Cell<f64>,
    started: Instant,
    /// The step this run began at (for the ETA).
    first_step: std::cell::Cell<usize>,
}

impl Checkpoint {
    pub fn new(dir: &std::path::Path, name: &str, settings: Value, steps: usize, every: usize) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name: name.into(),
            settings,
            steps,
            every,
            earlier_seconds: Default::default(),
            started: Instant::now(),
            first_step: Default::default(),
        }
    }

    /// The weights saved after `step` steps, and the record naming the latest of them.
    fn paths(&self, step: usize) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{}-{step:06}.safetensors", self.name)), self.dir.join(format!("{}.json", self.name)))
    }

    /// The saved state, if any.
    /// Settings must match.
    fn load(&self) -> Result<Option<Saved>> {
        let meta = self.paths(0).1;
        if !meta.exists() {
            return Ok(None);
        }
        let bad = |reason: String| Error::Io { path: meta.display().to_string(), reason };
        let text = std::fs::read_to_string(&meta).map_err(|e| bad(e.to_string()))?;
        let state: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not a checkpoint record: {e}")))?;
        if state["settings"] != self.settings {
            return Err(bad(format!(
                "saved with settings {} but this run has {}; use the same flags or another --out",
                state["settings"], self.settings
            )));
        }
        let step = state["next_step"].as_u64().ok_or_else(|| bad("no `next_step`".into()))? as usize;
        let weights = self.paths(step).0;
        let losses = state["losses"].as_array().cloned().unwrap_or_default();
        let bytes = std::fs::read(&weights)
            .map_err(|e| Error::Io { path: weights.display().to_string(), reason: e.to_string() })?;
        let seconds = state["seconds"].as_f64().unwrap_or(0.0);
        Ok(Some((step, losses, TensorFile::from_safetensors(&bytes, &weights.display().to_string())?, seconds)))
    }

    /// Writes the weights under their step, then the record pointing at them, then removes
    /// the earlier weights: a stop at any moment leaves a record and the weights it names.
    fn save(&self, next_step: usize, losses: &[Value], weights: &TensorFile) -> Result<()> {
        let (w, meta) = self.paths(next_step);
        write_atomic(&w, &weights.to_safetensors(StoredPrecision::F32))?;
        let earlier = std::fs::read_to_string(&meta)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|s| s["next_step"].as_u64());
        let seconds = self.earlier_seconds.get() + self.started.elapsed().as_secs_f64();
        let state = json!({ "next_step": next_step, "settings": self.settings, "losses": losses, "seconds": seconds });
        write_atomic(&meta, serde_json::to_string(&state).expect("json").as_bytes())?;
        if let Some(step) = earlier.filter(|s| *s as usize != next_step) {
            let _ = std::fs::remove_file(self.paths(step as usize).0);
        }
        Ok(())
    }

    /// After each step: adds its `entry` to the loss log, prints `line` with the step count and
    /// the ETA, and saves when the step ends a period (the last step is [`Checkpoint::stage`]'s
    /// to save).
    pub fn record(
        &self,
        step: usize,
        log: &mut Vec<Value>,
        entry: Value,
        line: String,
        snapshot: Snapshot,
    ) -> Result<()> {
        log.push(entry);
        let per = self.started.elapsed().as_secs_f64() / (step + 1 - self.first_step.get()) as f64;
        eprint!(
            "\r{} step {:>5}/{}  {line}  ETA {:.0} s   ",
            self.name,
            step + 1,
            self.steps,
            per * (self.steps - step - 1) as f64
        );
        if (step + 1).is_multiple_of(self.every) && step + 1 < self.steps {
            self.save(step + 1, log, &snapshot()?)?;
        }
        Ok(())
    }

    /// Runs a stage of `steps` steps from its checkpoint (or from the start), or takes its
    /// weights from an earlier run that finished it. `train` gets where to resume and the
    /// loss log to extend.
    /// Returns the weights, the loss log and the stage's training seconds over every run.
    pub fn stage(
        &self,
        train: impl FnOnce(Option<Resume>, &mut Vec<Value>) -> Result<TensorFile>,
    ) -> Result<(TensorFile, Vec<Value>, f64)> {
        let steps = self.steps;
        let (resume, mut losses) = match self.load()? {
            Some((step, losses, weights, seconds)) if step >= steps => {
                eprintln!("{}: finished in an earlier run ({})", self.name, self.paths(step).0.display());
                return Ok((weights, losses, seconds));
            }
            Some((step, losses, weights, seconds)) => {
                eprintln!("{}: resuming at step {step}", self.name);
                self.earlier_seconds.set(seconds);
                self.first_step.set(step);
                (Some(Resume { step, weights }), losses)
            }
            None => (None, Vec::new()),
        };
        let weights = train(resume, &mut losses)?;
        eprintln!();
        self.save(steps, &losses, &weights)?;
        Ok((weights, losses, self.earlier_seconds.get() + self.started.elapsed().as_secs_f64()))
    }
}

/// The folder of a run's checkpoints, made ready: a run never overwrites another run's
/// checkpoints, so without `resume` a folder that holds some is refused.
pub fn checkpoints_dir(dir: &std::path::Path, resume: bool) -> Result<()> {
    if dir.exists() && !resume && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(Error::config(format!(
            "{} holds checkpoints of an earlier run: pass --resume to continue it, or choose another --out",
            dir.display()
        )));
    }
    mkdir(dir)
}
