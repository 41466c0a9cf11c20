//! The stages behind the `loramix` command.

pub mod bench;
