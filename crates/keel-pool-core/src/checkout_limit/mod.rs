//! The checkout wait limit: a request that cannot start within the configured wait fails fast
//! with `Overloaded` instead of queueing for a pooled connection.
//!
//! The driver pools connections but cannot bound how long a request waits for one
//! (`waitQueueTimeoutMS` is unsupported). This layer admits at most as many concurrent
//! operations as the pool holds and makes the rest wait at most `wait`: the driver's checkout
//! itself then never queues for long. It does not pool anything.

mod future;
mod layer;
mod service;

pub use future::CheckoutFuture;
pub use layer::CheckoutLimitLayer;
pub use service::CheckoutLimit;
