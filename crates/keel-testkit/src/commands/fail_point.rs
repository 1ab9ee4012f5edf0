//! `configureFailPoint`: mongod's test command, for the `failCommand` fail point.

use bson::{Document, doc};

use super::{CommandError, Ctx};
use crate::fail_point::FailCommand;
use crate::server::lock;

pub(super) fn configure_fail_point(
    ctx: &Ctx<'_>,
    cmd: &Document,
) -> Result<Document, CommandError> {
    if ctx.db != "admin" {
        return Err(CommandError::new(
            13,
            "configureFailPoint may only be run against the admin database.",
        ));
    }
    let fp = FailCommand::from_command(cmd).map_err(|e| CommandError::bad_value(e.to_string()))?;
    let count = lock(&ctx.shared.fail_points).configure(fp);
    Ok(doc! {"count": count, "ok": 1.0})
}
