//! at-strategy (work in progress).
