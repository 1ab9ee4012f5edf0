//! Helpers shared by keel-backup's integration tests.
pub(crate) mod cluster;
pub(crate) mod moto;
