//! Generated protobuf messages (prost) and gRPC client (tonic) for `cachee.v1`.
//! The code under `gen/` is written by `make generate`; do not edit it.

/// Package `cachee.v1`: `CacheService` and its messages.
pub mod v1 {
    include!("gen/cachee/v1/cachee.v1.rs");
}
