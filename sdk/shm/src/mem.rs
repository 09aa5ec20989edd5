//! The read-only mapping of a segment, and the only code that touches its bytes.
//!
//! The writer, in another process, changes the segment while we read it. Every load is
//! therefore an atomic load of an aligned word (never a plain read of racing memory),
//! and every load is bounds-checked against the mapping: a hostile or corrupt segment
//! can make a lookup fail, never read outside the mapping. (A third party truncating the
//! file under the mapping can still fault the process: the residual risk that the Go
//! reader documents too.)

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::layout::UNIT;

/// A read-only shared mapping of a whole file.
pub(crate) struct Mem {
    base: *mut u8,
    len: u64,
}

// The mapping is only ever read through atomics.
unsafe impl Send for Mem {}
unsafe impl Sync for Mem {}

impl Mem {
    /// Maps len bytes of f read-only and shared.
    pub(crate) fn map(f: &File, len: u64) -> io::Result<Mem> {
        // SAFETY: a fresh mapping chosen by the kernel; nothing else refers to it.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len as usize, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd(), 0)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mem { base: p.cast(), len })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Replaces the file's pages with zero pages at the same addresses. A lookup still
    /// running on this mapping then reads zeros (state init: stale), instead of faulting
    /// on an unmapped address, and the file can be released. The range stays reserved
    /// until the Mem is dropped.
    pub(crate) fn blank(&self) -> io::Result<()> {
        // SAFETY: MAP_FIXED over our own mapping, same length; readers only load
        // through atomics, so they see either the file's words or zeros.
        let p = unsafe {
            libc::mmap(
                self.base.cast(),
                self.len as usize,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// An acquire load of the aligned word at off (sequence words): what follows it in
    /// program order is not read before it. 0 when off is outside the mapping.
    #[inline(always)]
    pub(crate) fn load_acquire(&self, off: u64) -> u64 {
        self.load_with(off, Ordering::Acquire)
    }

    /// A relaxed atomic load of the aligned word at off; 0 outside the mapping.
    #[inline(always)]
    pub(crate) fn load(&self, off: u64) -> u64 {
        self.load_with(off, Ordering::Relaxed)
    }

    #[inline(always)]
    fn load_with(&self, off: u64, order: Ordering) -> u64 {
        if off > self.len.wrapping_sub(8) || self.len < 8 {
            debug_assert!(false, "load of {off} outside a mapping of {}", self.len);
            return 0;
        }
        debug_assert!(off.is_multiple_of(UNIT), "unaligned load at {off}");
        // SAFETY: off + 8 <= len, off is 8-aligned (every offset the format hands out is,
        // and the base is page-aligned), and the memory stays mapped while self lives.
        unsafe { (*(self.base.add(off as usize) as *const AtomicU64)).load(order) }
    }

    /// A relaxed atomic load of the aligned u32 at off; 0 outside the mapping.
    #[inline(always)]
    pub(crate) fn load32(&self, off: u64) -> u32 {
        if off > self.len.wrapping_sub(4) || self.len < 4 {
            debug_assert!(false, "load32 of {off} outside a mapping of {}", self.len);
            return 0;
        }
        debug_assert!(off.is_multiple_of(4), "unaligned load32 at {off}");
        // SAFETY: as for load.
        unsafe { (*(self.base.add(off as usize) as *const AtomicU32)).load(Ordering::Relaxed) }
    }

    /// Whether the n = key.len() bytes at the aligned offset off equal key, by word loads.
    #[inline]
    pub(crate) fn equal(&self, off: u64, key: &[u8]) -> bool {
        let mut chunks = key.chunks_exact(8);
        let mut a = off;
        for c in &mut chunks {
            // Byte strings are compared in memory order.
            if self.load(a) != u64::from_ne_bytes(c.try_into().unwrap()) {
                return false;
            }
            a += 8;
        }
        let rest = chunks.remainder();
        if rest.is_empty() {
            return true;
        }
        self.load(a).to_ne_bytes()[..rest.len()] == *rest
    }

    /// Copies n bytes that start at off (any alignment) to out, with aligned word loads
    /// only. Every word loaded holds at least one of the n bytes, so it never reads past
    /// the block that holds them.
    ///
    /// # Safety
    /// out must be valid for n bytes of writes.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, out: *mut u8, off: u64, n: usize) {
        if n == 0 {
            return;
        }
        let mut a = off & !7;
        let skip = (off - a) as usize;
        let mut done = 0usize;
        if skip != 0 {
            // The head: the bytes of the first word from skip on.
            let w = self.load(a).to_ne_bytes();
            let take = (8 - skip).min(n);
            // SAFETY: take <= n bytes of out.
            unsafe { std::ptr::copy_nonoverlapping(w.as_ptr().add(skip), out, take) };
            done = take;
            a += 8;
        }
        while n - done >= 8 {
            // SAFETY: 8 of the n bytes of out; out may be unaligned.
            unsafe { std::ptr::write_unaligned(out.add(done).cast::<u64>(), self.load(a)) };
            done += 8;
            a += 8;
        }
        if done < n {
            let w = self.load(a).to_ne_bytes();
            // SAFETY: the last n - done bytes of out.
            unsafe { std::ptr::copy_nonoverlapping(w.as_ptr(), out.add(done), n - done) };
        }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: our own mapping; whoever could still read it holds a borrow of self.
        unsafe { libc::munmap(self.base.cast(), self.len as usize) };
    }
}
