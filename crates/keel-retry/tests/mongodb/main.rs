//! The MongoDB policy through the layer, over a mock service of `keel_core::Operation`s that
//! returns scripted classified errors.
#![cfg(feature = "mongodb")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod observability;
mod outcomes;
mod support;
mod table;
