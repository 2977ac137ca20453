// Blocking POSIX operations on an open image file, as QEMU's
// block/file-posix.c does them in its thread pool (handle_aiocb_*,
// raw_probe_alignment, find_allocation). Plain functions: the node calls
// them through co_run() (or directly at open, as QEMU does).
#pragma once

#include <sys/uio.h>

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "block/types.h"
#include "formats/result.h"

namespace coblock::file_posix {

// What the file system accepted so far; cleared when it answers ENOTSUP so
// later requests skip straight to what works (QEMU's has_write_zeroes,
// has_discard, has_fallocate). Shared by concurrent workers: atomic.
struct Capabilities {
    std::atomic<bool> has_write_zeroes{true};  // FALLOC_FL_ZERO_RANGE / BLKZEROOUT
    std::atomic<bool> has_discard{true};       // FALLOC_FL_PUNCH_HOLE / BLKDISCARD
    std::atomic<bool> has_fallocate{true};     // plain fallocate(0)
};

// open(2) with O_CLOEXEC and QEMU's qemu_open texts: "Could not open 'x':
// <strerror>" ("create" with O_CREAT), and "Could not open 'x': filesystem
// does not support O_DIRECT" when only O_DIRECT is refused.
Result<int> open_file(const std::string& path, int flags, mode_t mode = 0644);

// O_DIRECT limits found by QEMU's raw_probe_alignment: BLKSSZGET for block
// devices, else reads at offset 0 with 1, 512, 1024, 2048 and 4096 bytes
// (EINVAL = misaligned); "1 works" means no answer, so the page size is
// used. `memory` is the buffer alignment found the same way.
struct Alignment {
    uint32_t request = 1;
    uint32_t memory = 1;
};
// Errors: "Could not find working O_DIRECT alignment" (kInvalidArgument)
// with QEMU's hint "Try cache.direct=off" on the next line.
Result<Alignment> probe_alignment(int fd, bool is_block_device);

// The file or device length (lseek SEEK_END, as raw_getlength).
Result<uint64_t> get_length(int fd);

// One vectored read or write of `bytes`, retried on EINTR and continued
// after short transfers; a read that meets EOF stops there. `iov` is
// consumed (advanced) in place. Returns the bytes transferred or -errno.
// `rw_flags` are pwritev2/preadv2 RWF_* bits (RWF_DSYNC for FUA).
long rw_vector(bool is_write, int fd, iovec* iov, int iovcnt, uint64_t offset, uint64_t bytes,
               int rw_flags);

// Moves `iov`/`iovcnt` past `n` transferred bytes (the partly transferred
// slice is shortened in place).
void advance_iov(iovec*& iov, int& iovcnt, size_t n);

// fdatasync(); returns 0 or an errno.
int datasync(int fd);

// Resizes a regular file as handle_aiocb_truncate: off = ftruncate, falloc
// = posix_fallocate of the new tail, full = ftruncate then zeros written
// and fsync'd. Growing from 0 writes the first block so later alignment
// probes see real data. Preallocation cannot shrink ("Cannot use
// preallocation for shrinking files"); metadata is unsupported
// ("Unsupported preallocation mode: metadata").
Status truncate_regular(int fd, uint64_t size, Prealloc prealloc);

// QEMU's allocate_first_block: writes zeros over the first block (a page,
// at most `max_size` bytes), ignoring failures.
void allocate_first_block(int fd, uint64_t max_size);

// Makes [offset, offset+bytes) read as zeros without writing buffers:
// BLKZEROOUT on devices; on files fallocate(0) past EOF, ZERO_RANGE, or
// PUNCH_HOLE then fallocate(0). `may_unmap` tries PUNCH_HOLE|KEEP_SIZE
// first (holes read as zeros). Returns kUnsupported when nothing applies,
// so the request layer falls back to writing zero buffers.
Status write_zeroes(int fd, bool is_block_device, uint64_t offset, uint64_t bytes, bool may_unmap,
                    Capabilities& caps);

// Advisory discard: PUNCH_HOLE|KEEP_SIZE on files, BLKDISCARD on devices.
// Unsupported answers are success (QEMU ignores ENOTSUP for discard).
Status discard(int fd, bool is_block_device, uint64_t offset, uint64_t bytes, Capabilities& caps);

// QEMU's find_allocation: what lies at `start` and where it ends.
struct Allocation {
    enum Kind { kData, kHole, kTrailingHole, kUnknown } kind = kUnknown;
    uint64_t end = 0;  // first byte after the run (kData, kHole)
};
Result<Allocation> find_allocation(int fd, uint64_t start);

}  // namespace coblock::file_posix
