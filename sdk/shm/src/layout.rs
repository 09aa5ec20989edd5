//! The segment's layout, as docs/segment-format.md states it and store/layout.go defines
//! it. `tests/fixtures.rs` checks every constant here against the `layout.json` that the
//! Go writer's fixture generator emits, so the two cannot drift apart.
#![allow(missing_docs)]

pub const MAGIC: u64 = 0x4753_4545_4843_4143; // "CACHEESG"
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: u64 = 4096;
pub const UNIT: u64 = 8;
/// Sizes a writer makes: the store's MinMemory and MaxMemory, in whole pages.
pub const MIN_SIZE: u64 = 256 << 10;
pub const MAX_SIZE: u64 = 16 << 30;
pub const PAGE_MULTIPLE: u64 = 4096;
/// The segment's file name in its directory.
pub const SEGMENT_FILE: &str = "cachee.seg";

// Header fields: byte offsets.
pub const H_MAGIC: u64 = 0;
pub const H_VERSION: u64 = 8;
pub const H_HEADER_SIZE: u64 = 12;
pub const H_SEGMENT_SIZE: u64 = 16;
pub const H_GENERATION: u64 = 24;
pub const H_SEED: u64 = 32;
pub const H_CREATED: u64 = 40;
pub const H_WRITER_PID: u64 = 48;
pub const H_BUCKETS_LOG2: u64 = 52;
pub const H_DIR_OFFSET: u64 = 56;
pub const H_DIR_MAX_DEPTH: u64 = 64;
pub const H_MAX_KEY: u64 = 68;
pub const H_ARENA_OFFSET: u64 = 72;
pub const H_ARENA_SIZE: u64 = 80;
pub const H_MAX_VALUE: u64 = 88;
pub const H_CLOCK: u64 = 128;
pub const H_INDEX_VERSION: u64 = 192;
pub const H_GLOBAL_DEPTH: u64 = 200;
pub const H_STATE: u64 = 204;

// States.
pub const STATE_INIT: u32 = 0;
pub const STATE_ACTIVE: u32 = 1;
pub const STATE_CLOSED: u32 = 2;
pub const STATE_RETIRED: u32 = 3;

// Index.
pub const BUCKET_BYTES: u64 = 64;
pub const SLOTS_PER_BUCKET: u64 = 7;
pub const PROBE_WINDOW: u64 = 4;
pub const CTRL_SEQ_ONE: u64 = 1 << 16;
pub const CTRL_OVF_MASK: u64 = 0xffff;
pub const CACHE_LINE: u64 = 64;
/// The directory's largest depth a writer lays out.
pub const MAX_DIR_DEPTH: u32 = 24;

// Blocks.
pub const ENTRY_HEADER: u64 = 24;
pub const MIN_BLOCK: u64 = 32;
pub const W0_SIZE_MASK: u64 = 0xffff_ffff;
pub const W0_KLEN_SHIFT: u32 = 32;
pub const W0_KLEN_MASK: u64 = 0xfffff;
pub const W0_PAD_SHIFT: u32 = 52;
pub const W0_PAD_MASK: u64 = 0x3f;
pub const W0_FREE_BIT: u32 = 58;
pub const W0_KIND_SHIFT: u32 = 59;
pub const W0_KIND_MASK: u64 = 0x3;
pub const W0_VALUE_TYPE_SHIFT: u32 = 61;
pub const KIND_ENTRY: u64 = 0;
pub const KIND_TABLE: u64 = 1;
pub const KIND_SKETCH: u64 = 2;
pub const KIND_SENTINEL: u64 = 3;
pub const W1_EXPIRY_MASK: u64 = (1 << 48) - 1;
/// The key length field holds 20 bits.
pub const MAX_KEY_LIMIT: u64 = W0_KLEN_MASK;

/// A lookup's attempts before it gives up and the caller asks the sidecar.
pub const MAX_READ_RETRIES: u32 = 64;
/// The Expiry rule: within this many ms of the header clock, the reader's own clock decides.
pub const NEAR_MS: i64 = 1000;
/// The liveness rule: a writer whose clock lags real time by more is taken for gone.
pub const MAX_LAG_MS: i64 = 500;

/// The layout the writer derives from a segment's size alone (store.geometry):
/// `(buckets_log2, dir_max_depth, dir_offset, arena_offset)`.
pub fn geometry(size: u64) -> (u32, u32, u64, u64) {
    let est = size.wrapping_sub(HEADER_SIZE);
    let nb = est / 256 / BUCKET_BYTES; // a table is about 1/256 of the segment
    let nb_log2 = bit_len(nb).wrapping_sub(1).clamp(3, 8);
    // Enough directory for entries of 40 bytes at 40% table load, one level spare.
    let tables = est / 40 / ((SLOTS_PER_BUCKET << nb_log2) * 2 / 5) + 1;
    let max_depth = (bit_len(tables) + 1).clamp(4, MAX_DIR_DEPTH);
    let dir_off = HEADER_SIZE;
    let arena_off = (dir_off + (4u64 << max_depth) + CACHE_LINE - 1) & !(CACHE_LINE - 1);
    (nb_log2, max_depth, dir_off, arena_off)
}

/// Go's bits.Len64: the bits needed to write x (0 for 0).
fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}
