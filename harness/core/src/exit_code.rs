//! Exit codes of the `nfvi-verify` binary. CI systems gate on these, and the README and
//! `--help` document them; change them only with a major version.

/// The NFVI conforms to the suite: no mandatory check failed and the run is complete.
pub const CONFORMANT: i32 = 0;
/// The NFVI does not conform: a check of a mandatory requirement failed (or a SHOULD check
/// under `--strict`). For `diff`: something regressed.
pub const NON_CONFORMANT: i32 = 1;
/// Usage error or bad input: unknown suite or check, malformed target or results file, an
/// output directory that cannot be written.
pub const BAD_INPUT: i32 = 2;
/// The run could not decide: a check errored or timed out, or the run was interrupted; or it
/// decided but its artifacts could not all be written (the verdict is printed).
pub const INCOMPLETE: i32 = 3;
