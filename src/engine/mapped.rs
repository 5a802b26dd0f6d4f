//! Memory-mapped checkpoint files read in place: the rows of a GGUF tensor handed to the kernels'
//! repacking ([`FileRows`]), and letting go of a mapping's pages once their bytes are copied or
//! repacked, so that loading a model does not hold its file in the resident set besides the weights.

use crate::engine::kernels::RawRows;
use memmap2::Mmap;

/// The rows of one quantized tensor in a mapped GGUF file ([`crate::engine::weights::Weights::rows`]).
pub struct FileRows<'a> {
    pub(crate) map: &'a Mmap,
    /// Byte offset of row 0 in the mapping.
    pub(crate) start: usize,
    pub(crate) row_bytes: usize,
    pub(crate) rows: usize,
}

impl FileRows<'_> {
    /// Rows of the tensor.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

impl RawRows for FileRows<'_> {
    fn row(&self, r: usize) -> &[u8] {
        &self.map[self.start + r * self.row_bytes..self.start + (r + 1) * self.row_bytes]
    }

    fn done(&self, r0: usize, r1: usize) {
        release(self.map, self.start + r0 * self.row_bytes, (r1 - r0) * self.row_bytes);
    }
}

/// Unmaps bytes `at..at + len` of the file's mapping from this process (the page cache keeps them):
/// pages read while repacking would otherwise all count in the resident set until the mapping is
/// dropped, doubling the peak memory of loading. The range is widened to whole pages, so a neighbour
/// may lose pages still in use; they fault back in from the page cache unchanged.
pub(crate) fn release(map: &Mmap, at: usize, len: usize) {
    if len == 0 || at + len > map.len() {
        return;
    }
    // SAFETY: a read-only shared mapping of a file: MADV_DONTNEED only drops the page-table entries,
    // and the next access maps the same page-cache page again, so every borrow still reads the same
    // bytes. Only a hint: on failure the pages stay mapped until the mapping is dropped.
    #[cfg(unix)]
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, at, len) };
}

/// Unmaps the pages under `bytes`, a slice of a read-only file mapping, from this process (the page
/// cache keeps them), as [`release`] does for the GGUF file; widened to whole pages likewise.
pub(crate) fn release_bytes(bytes: &[u8]) {
    #[cfg(unix)]
    {
        // SAFETY: `sysconf` has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let start = bytes.as_ptr() as usize / page * page;
        let end = (bytes.as_ptr() as usize + bytes.len()).div_ceil(page) * page;
        if bytes.is_empty() {
            return;
        }
        // SAFETY: the pages lie in a read-only shared file mapping (the slice is inside it, and a
        // mapping covers whole pages): MADV_DONTNEED only drops their page-table entries and the next
        // access maps the same page-cache page again, so every borrow still reads the same bytes.
        // Only a hint: on failure the pages stay mapped.
        let _ = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
    #[cfg(not(unix))]
    let _ = bytes;
}
