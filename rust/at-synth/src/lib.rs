//! at-synth (work in progress).
