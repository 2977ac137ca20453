// Blocking POSIX operations of the file driver, following QEMU 7.2
// block/file-posix.c: raw_probe_alignment, handle_aiocb_rw,
// handle_aiocb_truncate, handle_aiocb_write_zeroes(_unmap), handle_aiocb_discard
// and find_allocation.
#include "drivers/file/file_posix.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "block/iovec.h"

namespace coblock::file_posix {

namespace {

constexpr size_t kMaxBlockSize = 4096;  // QEMU's MAX_BLOCKSIZE

size_t max_alignment() {
    const long page = sysconf(_SC_PAGESIZE);
    return std::max<size_t>(kMaxBlockSize, page > 0 ? static_cast<size_t>(page) : 0);
}

// QEMU's raw_is_io_aligned: Linux answers EINVAL for misaligned O_DIRECT
// reads; any other outcome (even an I/O error) means the alignment is fine.
bool io_is_aligned(int fd, void* buf, size_t length) {
    if (pread(fd, buf, length, 0) >= 0) return true;
    return errno != EINVAL;
}

// QEMU's translate_err: the many ways of saying "not supported".
int normalize_unsupported(int err) {
    if (err == ENODEV || err == ENOSYS || err == EOPNOTSUPP || err == ENOTTY) return ENOTSUP;
    return err;
}

// Returns 0 or a normalized errno.
int do_fallocate(int fd, int mode, uint64_t offset, uint64_t bytes) {
    for (;;) {
        if (fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(bytes)) == 0)
            return 0;
        if (errno != EINTR) return normalize_unsupported(errno);
    }
}

int do_ioctl_range(int fd, unsigned long request, uint64_t offset, uint64_t bytes) {
    uint64_t range[2] = {offset, bytes};
    for (;;) {
        if (ioctl(fd, request, range) == 0) return 0;
        if (errno != EINTR) return normalize_unsupported(errno);
    }
}

Error zeroes_error(int err) {
    return errno_error(err, "Failed to write zeroes");
}

}  // namespace

Result<int> open_file(const std::string& path, int flags, mode_t mode) {
    const int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    const int err = errno;
    const char* action = (flags & O_CREAT) ? "create" : "open";
    if (err == EINVAL && (flags & O_DIRECT)) {
        const int probe = open(path.c_str(), (flags & ~O_DIRECT) | O_CLOEXEC, mode);
        if (probe >= 0) {
            close(probe);
            return Error{ErrorKind::kInvalidArgument, EINVAL,
                         std::string("Could not ") + action + " '" + path +
                             "': filesystem does not support O_DIRECT",
                         std::nullopt};
        }
    }
    return errno_error(err, std::string("Could not ") + action + " '" + path + "'");
}

Result<Alignment> probe_alignment(int fd, bool is_block_device) {
    static constexpr size_t kCandidates[] = {1, 512, 1024, 2048, 4096};
    const size_t max_align = max_alignment();
    Alignment found{0, 0};
    if (is_block_device) {
        int sector_size = 0;
        if (ioctl(fd, BLKSSZGET, &sector_size) == 0 && sector_size > 0)
            found.request = static_cast<uint32_t>(sector_size);
    }
    if (found.request == 0) {
        AlignedBuffer buf(max_align, max_align);
        for (size_t align : kCandidates) {
            if (io_is_aligned(fd, buf.data(), align)) {
                // 1 working tells nothing (an empty file, or a file system
                // that ignores O_DIRECT): take the safe maximum.
                found.request = static_cast<uint32_t>(align != 1 ? align : max_align);
                break;
            }
        }
    }
    {
        AlignedBuffer buf(2 * max_align, max_align);
        for (size_t align : kCandidates) {
            if (io_is_aligned(fd, buf.data() + align, max_align)) {
                found.memory = static_cast<uint32_t>(align != 1 ? align : found.request);
                break;
            }
        }
    }
    if (found.request == 0 || found.memory == 0)
        return invalid_argument("Could not find working O_DIRECT alignment\nTry cache.direct=off");
    return found;
}

Result<uint64_t> get_length(int fd) {
    const off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) return errno_error(errno, "Could not get the file length");
    return static_cast<uint64_t>(end);
}

long rw_vector(bool is_write, int fd, iovec* iov, int iovcnt, uint64_t offset, uint64_t bytes,
               int rw_flags) {
    uint64_t done = 0;
    while (done < bytes && iovcnt > 0) {
        const off_t at = static_cast<off_t>(offset + done);
        const ssize_t n = is_write ? pwritev2(fd, iov, iovcnt, at, rw_flags)
                                   : preadv2(fd, iov, iovcnt, at, rw_flags);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) {
            if (is_write) return -ENOSPC;  // nothing written and no error: out of room
            break;                         // EOF: the caller zero-fills the rest
        }
        done += static_cast<uint64_t>(n);
        advance_iov(iov, iovcnt, static_cast<size_t>(n));
    }
    return static_cast<long>(done);
}

void advance_iov(iovec*& iov, int& iovcnt, size_t n) {
    while (n > 0 && iovcnt > 0) {
        if (n >= iov->iov_len) {
            n -= iov->iov_len;
            ++iov;
            --iovcnt;
        } else {
            iov->iov_base = static_cast<char*>(iov->iov_base) + n;
            iov->iov_len -= n;
            n = 0;
        }
    }
}

int datasync(int fd) {
    for (;;) {
        if (fdatasync(fd) == 0) return 0;
        if (errno != EINTR) return errno;
    }
}

void allocate_first_block(int fd, uint64_t max_size) {
    // QEMU writes a sector when the file is smaller than a block; we also
    // never write past `max_size`, so the file keeps the size asked for.
    size_t write_size = max_size < kMaxBlockSize ? 512 : kMaxBlockSize;
    write_size = static_cast<size_t>(std::min<uint64_t>(write_size, max_size));
    if (write_size == 0) return;
    AlignedBuffer zeros(std::max<size_t>(write_size, 512), max_alignment());
    ssize_t n;
    do {
        n = pwrite(fd, zeros.data(), write_size, 0);
    } while (n == -1 && errno == EINTR);
}

Status truncate_regular(int fd, uint64_t size, Prealloc prealloc) {
    struct stat st;
    if (fstat(fd, &st) != 0) return errno_error(errno, "Could not stat file");
    const uint64_t current = static_cast<uint64_t>(st.st_size);
    if (prealloc == Prealloc::kMetadata)
        return unsupported_error(std::string("Unsupported preallocation mode: ") +
                                 prealloc_name(prealloc));
    if (current > size && prealloc != Prealloc::kOff)
        return unsupported_error("Cannot use preallocation for shrinking files");

    switch (prealloc) {
        case Prealloc::kFalloc:
            if (size != current) {
                // No ftruncate first: posix_fallocate's fallback is twice as
                // slow on a file that already has the length (QEMU's note).
                if (int err = posix_fallocate(fd, static_cast<off_t>(current),
                                              static_cast<off_t>(size - current)))
                    return errno_error(err, "Could not preallocate new data");
                if (current == 0) allocate_first_block(fd, size);
            }
            return {};
        case Prealloc::kFull: {
            // The final length first lets the file system allocate in one go.
            if (ftruncate(fd, static_cast<off_t>(size)) != 0)
                return errno_error(errno, "Could not resize file");
            constexpr size_t kChunk = 65536;
            AlignedBuffer zeros(kChunk, max_alignment());
            uint64_t at = current;
            while (at < size) {
                const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - at));
                const ssize_t written = pwrite(fd, zeros.data(), n, static_cast<off_t>(at));
                if (written < 0) {
                    if (errno == EINTR) continue;
                    return errno_error(errno, "Could not write zeros for preallocation");
                }
                at += static_cast<uint64_t>(written);
            }
            if (fsync(fd) != 0) return errno_error(errno, "Could not flush file to disk");
            return {};
        }
        case Prealloc::kOff:
        default:
            if (ftruncate(fd, static_cast<off_t>(size)) != 0)
                return errno_error(errno, "Could not resize file");
            // Real data at offset 0 keeps future O_DIRECT probes honest.
            if (current == 0 && size > 0) allocate_first_block(fd, size);
            return {};
    }
}

Status write_zeroes(int fd, bool is_block_device, uint64_t offset, uint64_t bytes, bool may_unmap,
                    Capabilities& caps) {
    if (may_unmap) {
        // Zeroing and unmapping at once; holes read as zeros.
        const int err = do_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes);
        if (err == 0) return {};
        if (err != ENOTSUP && err != EINVAL && err != EBUSY) return zeroes_error(err);
    }
    if (is_block_device) {
        if (caps.has_write_zeroes) {
            const int err = do_ioctl_range(fd, BLKZEROOUT, offset, bytes);
            if (err == 0) return {};
            if (err == ENOTSUP) caps.has_write_zeroes = false;
            // EINVAL: a range the device cannot take; let the caller write
            // zero buffers instead of failing the request.
            if (err != ENOTSUP && err != EINVAL) return zeroes_error(err);
        }
        return unsupported_error("file: zero writes not supported by the device");
    }
    if (caps.has_write_zeroes) {
        const int err = do_fallocate(fd, FALLOC_FL_ZERO_RANGE, offset, bytes);
        if (err == 0) return {};
        if (err == ENOTSUP)
            caps.has_write_zeroes = false;
        else if (err != EINVAL)  // some file systems refuse unaligned ranges
            return zeroes_error(err);
    }
    if (caps.has_discard && caps.has_fallocate) {
        int err = do_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes);
        if (err == 0) {
            // Allocate the range again: without MAY_UNMAP it must stay mapped.
            err = do_fallocate(fd, 0, offset, bytes);
            if (err == 0) return {};
            if (err != ENOTSUP) return zeroes_error(err);
            caps.has_fallocate = false;
        } else if (err == ENOTSUP) {
            caps.has_discard = false;
        } else if (err != EINVAL) {
            return zeroes_error(err);
        }
    }
    // Last resort for ranges past EOF: extending with fallocate(0) gives zeros.
    const off_t length = lseek(fd, 0, SEEK_END);
    if (caps.has_fallocate && length >= 0 && offset >= static_cast<uint64_t>(length)) {
        const int err = do_fallocate(fd, 0, offset, bytes);
        if (err == 0) return {};
        if (err != ENOTSUP) return zeroes_error(err);
        caps.has_fallocate = false;
    }
    return unsupported_error("file: zero writes not supported by the file system");
}

Status discard(int fd, bool is_block_device, uint64_t offset, uint64_t bytes, Capabilities& caps) {
    if (!caps.has_discard) return {};
    const int err = is_block_device ? do_ioctl_range(fd, BLKDISCARD, offset, bytes)
                                    : do_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                                   offset, bytes);
    if (err == 0) return {};
    if (err == ENOTSUP) {
        caps.has_discard = false;  // advisory: nothing to report
        return {};
    }
    return errno_error(err, "Failed to discard");
}

Result<Allocation> find_allocation(int fd, uint64_t start) {
    Allocation out;
    const off_t at = static_cast<off_t>(start);
    off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0) {
        // ENXIO: no data at or after `start` (a trailing hole). Anything
        // else: no information, and the caller pretends all is data.
        out.kind = errno == ENXIO ? Allocation::kTrailingHole : Allocation::kUnknown;
        return out;
    }
    if (data < at) return make_error(ErrorKind::kIo, "file: SEEK_DATA went backwards");
    if (data > at) {
        out.kind = Allocation::kHole;
        out.end = static_cast<uint64_t>(data);
        return out;
    }
    const off_t hole = lseek(fd, at, SEEK_HOLE);
    if (hole < 0) {
        out.kind = Allocation::kUnknown;
        return out;
    }
    if (hole < at) return make_error(ErrorKind::kIo, "file: SEEK_HOLE went backwards");
    if (hole == at) {
        // Data and hole at the same offset: the file changed under us
        // (QEMU answers -EBUSY and reports data).
        out.kind = Allocation::kUnknown;
        return out;
    }
    out.kind = Allocation::kData;
    out.end = static_cast<uint64_t>(hole);
    return out;
}

}  // namespace coblock::file_posix
