//! `stoic status`.

use std::process::ExitCode;

/// Arguments of `stoic status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Not built yet: says so and fails, so nothing mistakes it for working.
#[allow(clippy::needless_pass_by_value)]
pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`stoic status` is not built yet")
}
