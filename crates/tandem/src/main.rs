//! `tandem`: the command line of a Tandem region. Only argument parsing and glue live here; the
//! work is in the library crates.

mod backup_cmds;
mod cli;
mod client_cmds;
mod demo;
mod drill_cmd;
mod models;
mod recover_cmds;
mod resource;
mod serve;
mod workers_cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
