//! The CPU time the calling thread has run, for client CPU per call: read from
//! `/proc/thread-self/schedstat` (Linux), whose first field is the thread's time on a CPU in
//! nanoseconds (the scheduler's `sum_exec_runtime`, see the kernel's
//! Documentation/scheduler/sched-stats.rst). Reading a file keeps the benches free of `unsafe`
//! (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)` would need it) and is exact to the nanosecond,
//! unlike `getrusage`'s tick-based figures.

use std::time::Duration;

/// This thread's CPU time so far, or `None` where `/proc/thread-self/schedstat` does not exist
/// (not Linux, or a kernel older than 3.17).
pub(crate) fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
