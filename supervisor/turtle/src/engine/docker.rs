//! bollard implementation (in progress)
