//! `unforge`: the command-line front of the core, for batch work. One file per subcommand,
//! each owning its arguments.

mod align;
mod bench;
mod checkpoint;
mod common;
mod convert;
mod convert_tfjs;
mod eval;
mod finetune;
mod init_zoo;
mod invert;
mod run;
mod samples;
mod synth;
mod train;
mod zoo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "unforge", version, about = "Counterfactual explanations for face-forgery detectors")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    InitZoo(init_zoo::InitZooArgs),
    Samples(samples::SamplesArgs),
    Synth(synth::SynthArgs),
    /// Trains a zoo on the synthetic world on the CPU: the generator and encoder as an
    /// autoencoder through W+ (real and fake images), then each detector (Xception,
    /// EfficientNet, ResNet) on real vs fake, raw and reconstructed, then an identity network
    /// (ArcFace IR-SE) on shots of the same people. Writes zoo.json, the weights (f16),
    /// train-report.json (losses, test-split scores) and resumable checkpoints.
    Train(train::TrainArgs),
    Finetune(finetune::FinetuneArgs),
    Convert(convert::ConvertArgs),
    ConvertTfjs(convert_tfjs::ConvertTfjsArgs),
    Align(align::AlignArgs),
    Zoo(zoo::ZooArgs),
    Bench(bench::BenchArgs),
    Invert(invert::InvertArgs),
    Run(run::RunArgs),
    Eval(eval::EvalArgs),
}

fn main() -> ExitCode {
    common::keep_freed_memory();
    let outcome = match Cli::parse().command {
        Command::InitZoo(args) => init_zoo::run(&args),
        Command::Samples(args) => samples::run(&args),
        Command::Synth(args) => synth::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Finetune(args) => finetune::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::ConvertTfjs(args) => convert_tfjs::run(&args),
        Command::Align(args) => align::run(&args),
        Command::Zoo(args) => zoo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Invert(args) => invert::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Eval(args) => eval::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
