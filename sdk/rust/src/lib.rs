#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod address;
mod client;
mod error;
mod shm;

pub use address::{Address, DEFAULT_PORT, DEFAULT_SOCKET};
pub use client::{Builder, Client, Item, PrewarmOptions, PrewarmProgress, RetryPolicy, SetOptions, Stats};
pub use error::{Error, ErrorKind, ERROR_DOMAIN};
pub use shm::ShmStatus;

/// The generated messages and client, for what this crate does not wrap.
pub use cachee_proto::v1 as proto;
