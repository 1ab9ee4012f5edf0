//! Behaviour of the generic retry layer over a scripted mock service, all under paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod budget;
mod config;
mod deadline;
mod delays;
mod observe;
mod outcome;
mod props;
mod support;
