//! Helpers shared by keel-backup's integration tests.
pub(crate) mod moto;
