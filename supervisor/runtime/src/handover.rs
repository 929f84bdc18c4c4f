//! The hand-over strategy (being written).
