#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod address;
mod client;
mod error;
mod retry;
mod rpc;
mod shm;

pub use address::{resolve_token, Address, DEFAULT_PORT, DEFAULT_SOCKET};
pub use client::{
    Builder, Client, Item, PrewarmError, PrewarmOptions, PrewarmProgress, PrewarmStream, SetOptions, Stats,
};
pub use error::{Code, Error, ErrorKind, ERROR_DOMAIN};
pub use retry::{RetryPolicy, DEFAULT_PREWARM_TIMEOUT, DEFAULT_TIMEOUT};
pub use shm::ShmStatus;

#[cfg(test)]
mod contract_tests;
