//! at-features (work in progress).
