//! `webaccel`: the Jupyter kernel, the script runner, and the setup helpers, in one binary.

mod evaluator;
mod history;
mod install;
mod ipfs_cli;
mod kernel;
mod media;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use webaccel_scripting::{Config, ScriptHost, Services, Stream};

#[derive(Parser)]
#[command(name = "webaccel", version, about = "Measure how ML models really run inside browsers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the Jupyter kernelspec ("WebAccel (Rhai)").
    Install {
        /// Install under PREFIX/share/jupyter/kernels instead of the user's Jupyter data directory.
        #[arg(long)]
        prefix: Option<PathBuf>,
    },
    /// Run as a Jupyter kernel (Jupyter starts this; see `install`).
    Kernel {
        #[arg(long)]
        connection_file: PathBuf,
    },
    /// Run a .rhai script and print what it prints.
    Run { file: PathBuf },
    /// Report what each browser can do.
    Detect {
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Content-addressed files: add to the local store, get by CID (verified), store stats.
    Ipfs {
        #[command(subcommand)]
        command: ipfs_cli::IpfsCommand,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEBACCEL_LOG")
                .unwrap_or_else(|_| "warn,chromiumoxide=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A script's output line on the process's own stream: `print` to stdout, `debug` to stderr.
fn print_line(stream: Stream, line: &str) {
    match stream {
        Stream::Stdout => println!("{line}"),
        Stream::Stderr => eprintln!("{line}"),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Install { prefix } => {
            let dir = install::install(prefix.as_deref())?;
            println!("installed kernelspec '{}' in {}", install::KERNEL_NAME, dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Kernel { connection_file } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(kernel::run(&connection_file))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { file } => {
            let code = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut host = ScriptHost::new(Config::default(), Arc::new(print_line))?;
            shut_down_on_signal(host.services().clone());
            host.services().set_progress(Arc::new(progress::Bar::default()));
            let outcome = host.eval(&code);
            // The signal thread holds the services too, so dropping the host would not close
            // the browsers: close them (and remove their profiles) here.
            host.services().shutdown();
            match outcome {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Detect { json } => {
            let mut host = ScriptHost::new(Config::default(), Arc::new(print_line))?;
            shut_down_on_signal(host.services().clone());
            let report = host.eval("detect()");
            host.services().shutdown();
            let report = report.map_err(|e| anyhow::anyhow!("{e}"))?;
            let report = serde_json::to_value(&report)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", webaccel_scripting::detect_report::summary(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ipfs { command } => {
            ipfs_cli::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ctrl-C or SIGTERM must not leave browsers behind: close them, then exit.
pub(crate) fn shut_down_on_signal(services: Arc<Services>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        let signal = rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Some(130),
                _ = term.recv() => Some(143),
            }
        });
        if let Some(code) = signal {
            tracing::debug!(code, "signal received; closing browsers");
            services.shutdown();
            std::process::exit(code);
        }
    });
}
