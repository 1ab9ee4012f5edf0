//! OpenTelemetry instrumentation (in progress).
