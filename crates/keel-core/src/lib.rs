//! Keel's shared vocabulary: the [`Operation`] request, the classified [`Error`] and redaction.
//!
//! Every database call in Keel is an [`Operation`] that travels down a `tower` stack to the
//! MongoDB driver. Each layer (retry, circuit breaker, health gate…) decides what to do from two
//! things only: the operation's [`OperationKind`] and the failure's [`ErrorClass`]. This crate
//! owns both, plus the classifier that maps every `mongodb::error::Error` to a class following
//! MongoDB's specifications, and the [`redact`] helpers that keep credentials out of every
//! message.
//!
//! ```
//! use keel_core::{Operation, OperationKind, ErrorClass};
//! use mongodb::bson::{doc, Document};
//!
//! // A read that Keel may safely run again after a network error.
//! let find = Operation::read("users.find_one", |client: mongodb::Client| async move {
//!     client.database("app").collection::<Document>("users").find_one(doc! {}).await
//! });
//! assert_eq!(find.kind(), OperationKind::Read);
//!
//! // A classified error carries what a layer needs to decide, and a message safe for end users.
//! let err = keel_core::Error::overloaded("checkout wait limit reached", None);
//! assert_eq!(err.class(), ErrorClass::Overloaded);
//! assert!(err.is_retryable(OperationKind::Write { idempotent: false }));
//! assert!(!err.user_message().contains("checkout"));
//! ```

mod error;
mod operation;
mod operation_name;
pub mod redact;

pub use error::{
    Classification, DUPLICATE_KEY_MESSAGE, DriverFailure, Error, ErrorClass, ErrorFacts, ErrorKind,
    Severity, classify, classify_code, codes, is_resumable_change_stream_error, is_retry_safe,
    labels, tables,
};
pub use operation::{Operation, OperationFuture, OperationKind};
pub use operation_name::OperationName;
pub use redact::Secret;

/// Convenience alias for results whose error is Keel's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
