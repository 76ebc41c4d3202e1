//! `webaccel`: the Jupyter kernel, the script runner, and the setup helpers, in one binary.

mod cell_bridge;
mod evaluator;
mod history;
mod install;
mod ipfs_cli;
mod kernel;
mod media;
mod progress;
mod rust_cells;
mod shell;
mod wire;

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
            on_signals(host.services().clone(), true, || {});
            host.services().set_progress(Arc::new(progress::Bar::default()));
            let outcome = host.eval(&code);
            // The signal thread holds the services too, so dropping the host would not close
            // the browsers: close them (and remove their profiles) here.
            host.services().shutdown();
            match outcome {
                Ok(_) => Ok(ExitCode::SUCCESS),
                // Ctrl-C: the rows made so far are stored; the shell's convention for SIGINT.
                Err(e) if e.kind == "Interrupted" => {
                    eprintln!("{}: interrupted; the rows finished so far are stored", file.display());
                    Ok(ExitCode::from(130))
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Detect { json } => {
            let mut host = ScriptHost::new(Config::default(), Arc::new(print_line))?;
            on_signals(host.services().clone(), true, || {});
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

/// SIGINT (Ctrl-C, or a kernel interrupt under `interrupt_mode: signal`) interrupts the
/// running call, which stops within a second and keeps its rows. A second SIGINT during the
/// same call, when `twice_exits` (`webaccel run`, `detect`), and SIGTERM always, close the
/// browsers (and a Rust cells' helper) and exit: nothing is left behind either way.
/// `also_interrupt` stops what the services do not run (the kernel's Rust cell).
pub(crate) fn on_signals(services: Arc<Services>, twice_exits: bool, also_interrupt: impl Fn() + Send + 'static) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        let code = rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return None;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {
                        if twice_exits && services.interrupt.is_raised() {
                            return Some(130);
                        }
                        tracing::debug!("SIGINT: interrupting the running call");
                        services.interrupt.raise();
                        also_interrupt();
                    }
                    _ = term.recv() => return Some(143),
                }
            }
        });
        if let Some(code) = code {
            tracing::debug!(code, "closing browsers and exiting");
            services.interrupt.raise();
            rust_cells::kill_helper_and_remove_files();
            services.shutdown();
            std::process::exit(code);
        }
    });
}
