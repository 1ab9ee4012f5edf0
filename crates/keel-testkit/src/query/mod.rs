//! The query language: BSON ordering, dotted paths, filters, updates, projections and sorts.

pub(crate) mod compare;
pub(crate) mod expr;
pub(crate) mod filter;
pub(crate) mod path;
pub(crate) mod projection;
pub(crate) mod sort;
pub(crate) mod update;
