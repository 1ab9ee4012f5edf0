//! The admin dashboard (in progress).
