//! `op-coordinator`: the binary. It parses flags, sets up logging, loads the config, binds the
//! listeners and runs the library until Ctrl-C or SIGTERM.

mod ctl;
mod devnet;
mod run;
mod table;
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
    Devnet(devnet::DevnetArgs),
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
        Command::Devnet(args) => devnet::devnet(args),
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
