//! `history`: what happened to a connection, or to everything.

use std::process::ExitCode;

use authdeck_core::manager::Manager;
use authdeck_core::Result;

use super::print_json;
use crate::output;

pub async fn history(
    manager: &Manager,
    connection: Option<String>,
    limit: usize,
    json: bool,
) -> Result<ExitCode> {
    let entries = manager.history(connection.as_deref(), limit).await?;
    if json {
        print_json(&entries)?;
    } else {
        output::history(&entries);
    }
    Ok(ExitCode::SUCCESS)
}
