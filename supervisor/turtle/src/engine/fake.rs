//! recording fake (in progress)
