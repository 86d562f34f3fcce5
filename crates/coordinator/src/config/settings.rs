//! Settings each subsystem runs on, derived from the configuration.
