//! `op-coordinator`: the binary. It parses flags, sets up logging, loads the config, binds the
//! listeners and runs the library until Ctrl-C or SIGTERM.
//!
//! The `devnet` feature (a default one) adds `devnet`, its live view and `ctl sim`: everything
//! that links the simulator. Without it (`--no-default-features`) the binary is the daemon, its
//! config check and its operator client only.

mod ctl;
#[cfg(feature = "devnet")]
mod devnet;
mod run;
mod table;
#[cfg(feature = "devnet")]
mod view;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "op-coordinator",
    version,
    about = "Keeps exactly one OP Stack sequencer producing blocks and fails over within a second",
    long_about = "Keeps exactly one OP Stack sequencer producing blocks. It health-checks every \
                  sequencer (op-node + op-geth), fails over from an unhealthy leader with the \
                  stopped-hash hand-over (no re-org), stops any extra active sequencer, and \
                  explains every verdict over its admin API and metrics."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the coordinator with a config file.
    Run(run::RunArgs),
    /// Try it: a simulated 3-node chain (op-sim) and the coordinator in one process, on loopback.
    ///
    /// Inject faults from another terminal, e.g. `op-coordinator ctl sim crash seq-0`, and watch
    /// the coordinator fail over in the live view (in the log when stdout is not a terminal).
    #[cfg(feature = "devnet")]
    Devnet(devnet::DevnetArgs),
    /// Built without the `devnet` feature: says so instead of clap's "unrecognized subcommand".
    #[cfg(not(feature = "devnet"))]
    #[command(hide = true, disable_help_flag = true)]
    Devnet {
        /// Whatever flags were given, so the answer is the same for any of them.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Operate a running coordinator (status, events, transfer, pause, resume) and the simulator.
    Ctl(ctl::CtlArgs),
    /// Validate a config file (with env overrides) and print the effective config.
    CheckConfig(run::CheckArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Ctl(args) = cli.command {
        return ctl::ctl(args);
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::CheckConfig(args) => run::check(args),
        #[cfg(feature = "devnet")]
        Command::Devnet(args) => devnet::devnet(args),
        #[cfg(not(feature = "devnet"))]
        Command::Devnet { .. } => Err(anyhow::anyhow!(
            "this op-coordinator was built without the `devnet` feature (--no-default-features); \
             build it with default features to run the devnet: \
             cargo run --release -p op-coordinator-cli -- devnet"
        )),
        Command::Ctl(_) => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("op-coordinator: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
