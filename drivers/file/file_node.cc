// The `file` protocol node (QEMU's block/file-posix.c raw_co_* functions):
// request paths over libaio, io_uring or the thread pool, zero writes and
// discard, block status, truncate, reopen and permission locks.
#include "drivers/file/file_node.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "coroutine/event_loop.h"
#include "coroutine/thread_pool.h"
#include "drivers/file/io_uring.h"
#include "drivers/file/linux_aio.h"

namespace coblock {

namespace {

// Slices that fit the stack array of a request; longer vectors (rare:
// heavily fragmented guest buffers) fall back to the heap.
constexpr size_t kInlineIov = 16;

// Runs `fn` on the loop's thread pool, or inline when there is no
// coroutine to park (open paths called from plain code).
template <class F>
auto run_blocking(F&& fn) {
    if (in_coroutine()) return co_run(fn);
    return fn();
}

}  // namespace

FileNode::FileNode(const BlockDriver& driver, int fd, bool is_block_device)
    : BlockNode(driver), fd_(fd), is_block_device_(is_block_device) {}

FileNode::~FileNode() {
    // Closing the descriptor drops its OFD locks with it.
    if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<FileNode>> FileNode::co_open(const BlockDriver& driver,
                                                    const FileNodeConfig& config,
                                                    const OpenFlags& flags,
                                                    std::vector<std::string>& warnings) {
    const std::string& path = config.path;
    int mode = flags.read_only ? O_RDONLY : O_RDWR;
    if (flags.cache_direct) mode |= O_DIRECT;
    ASSIGN_OR_RETURN(int fd, file_posix::open_file(path, mode));
    std::unique_ptr<FileNode> node(new FileNode(driver, fd, false));

    struct stat st;
    if (fstat(fd, &st) != 0) return errno_error(errno, "Could not stat '" + path + "'");
    node->is_block_device_ = S_ISBLK(st.st_mode);
    if (config.devices_only) {
        if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
            return invalid_argument("'" + driver.name + "' driver requires '" + path +
                                    "' to be either a character or block device");
    } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        // QEMU's file driver takes regular files only; we also take block
        // devices (there is no separate host_device need for them here).
        return invalid_argument("'" + driver.name + "' driver requires '" + path +
                                "' to be a regular file");
    }
    node->set_filename(path);
    ASSIGN_OR_RETURN(uint64_t length, file_posix::get_length(fd));
    node->set_size(length);
    TRY(node->refresh_limits(flags.cache_direct));

    switch (config.aio) {
        case AioMode::kThreads:
            break;
        case AioMode::kNative: {
            // Linux does AIO asynchronously only for O_DIRECT (QEMU's rule).
            if (!flags.cache_direct)
                return invalid_argument(
                    "aio=native was specified, but it requires cache.direct=on, which was not "
                    "specified.");
            auto aio = LinuxAio::acquire(EventLoop::current());
            if (aio.ok()) {
                node->linux_aio_ = std::move(*aio);
                node->aio_ = AioMode::kNative;
            } else {
                warnings.push_back("Unable to use native AIO, falling back to thread pool: " +
                                   aio.error().message);
            }
            break;
        }
        case AioMode::kIoUring: {
#ifdef COBLOCK_HAVE_IO_URING
            auto uring = IoUring::acquire(EventLoop::current());
            if (uring.ok()) {
                node->io_uring_ = std::move(*uring);
                node->aio_ = AioMode::kIoUring;
            } else {
                warnings.push_back("Unable to use io_uring, falling back to thread pool: " +
                                   uring.error().message);
            }
#else
            return invalid_argument("invalid parameter value: io_uring");
#endif
            break;
        }
    }

    node->use_locks_ = config.use_locks;
    node->set_supported_write_flags(kReqFua);
    node->set_supported_zero_flags(kReqMayUnmap | kReqNoFallback);
    return node;
}

Status FileNode::refresh_limits(bool direct) {
    BlockLimits& limits = mutable_limits();
    limits.max_iov = IOV_MAX;
    if (!direct) {
        limits.request_alignment = 1;
        limits.memory_alignment = 1;
        return {};
    }
    ASSIGN_OR_RETURN(file_posix::Alignment alignment,
                     file_posix::probe_alignment(fd_, is_block_device_));
    limits.request_alignment = alignment.request;
    // O_DIRECT wants every slice's length aligned to the logical block size
    // as well as its address, and memory_alignment covers both.
    limits.memory_alignment = std::max(alignment.memory, alignment.request);
    return {};
}

// ---- Reads and writes ---------------------------------------------------------

long FileNode::co_rw(bool is_write, struct iovec* iov, int iovcnt, uint64_t offset, uint64_t bytes,
                     int rw_flags) {
    auto on_thread_pool = [&](uint64_t done) -> long {
        long n = co_run([&] {
            return file_posix::rw_vector(is_write, fd_, iov, iovcnt, offset + done, bytes - done,
                                         rw_flags);
        });
        return n < 0 ? n : static_cast<long>(done) + n;
    };
    if (aio_ == AioMode::kThreads) return on_thread_pool(0);

    // Kernel AIO answers short transfers (EOF, or more than MAX_RW_COUNT);
    // continue with the rest until a read returns 0.
    uint64_t done = 0;
    while (done < bytes) {
        long n = -EINVAL;
        if (aio_ == AioMode::kNative) {
            n = linux_aio_->co_submit(is_write, fd_, iov, iovcnt, offset + done, rw_flags);
        }
#ifdef COBLOCK_HAVE_IO_URING
        if (aio_ == AioMode::kIoUring) {
            n = io_uring_->co_submit(is_write ? IoUring::Op::kWrite : IoUring::Op::kRead, fd_, iov,
                                     iovcnt, offset + done, rw_flags);
        }
#endif
        if (n == -EAGAIN) return on_thread_pool(done);  // the kernel is out of resources
        if (n < 0) return n;
        if (n == 0) {
            if (is_write) return -ENOSPC;
            break;
        }
        done += static_cast<uint64_t>(n);
        file_posix::advance_iov(iov, iovcnt, static_cast<size_t>(n));
    }
    return static_cast<long>(done);
}

Status FileNode::co_readv_writev(bool is_write, uint64_t offset, uint64_t bytes, IoVector& qiov,
                                 uint32_t flags) {
    int rw_flags = 0;
    // FUA is a flush of this write; cache=unsafe ignores flushes.
    if (is_write && (flags & kReqFua) && !open_flags().cache_no_flush) rw_flags |= RWF_DSYNC;

    struct iovec inline_iov[kInlineIov];
    std::vector<struct iovec> heap_iov;
    struct iovec* iov = inline_iov;
    size_t count = qiov.to_iovec(inline_iov, kInlineIov);
    if (count == 0 && qiov.slice_count() > 0) {
        qiov.to_iovec(heap_iov);
        iov = heap_iov.data();
        count = heap_iov.size();
    }
    const long n = co_rw(is_write, iov, static_cast<int>(count), offset, bytes, rw_flags);
    if (n < 0)
        return errno_error(static_cast<int>(-n), std::string(is_write ? "write" : "read") + " of " +
                                                     std::to_string(bytes) + " bytes at offset " +
                                                     std::to_string(offset) + " in '" + filename() +
                                                     "'");
    // A read that met the end of the file: the rest reads as zeros.
    if (static_cast<uint64_t>(n) < bytes)
        qiov.fill(static_cast<size_t>(n), 0, static_cast<size_t>(bytes - static_cast<uint64_t>(n)));
    return {};
}

Status FileNode::co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
    return co_readv_writev(false, offset, bytes, qiov, flags);
}

Status FileNode::co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) {
    return co_readv_writev(true, offset, bytes, qiov, flags);
}

// ---- Zeroes, discard, flush -------------------------------------------------------

Status FileNode::co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) {
    const bool may_unmap = (flags & kReqMayUnmap) != 0;
    return co_run([&] {
        return file_posix::write_zeroes(fd_, is_block_device_, offset, bytes, may_unmap, caps_);
    });
}

Status FileNode::co_pdiscard(uint64_t offset, uint64_t bytes) {
    return co_run([&] { return file_posix::discard(fd_, is_block_device_, offset, bytes, caps_); });
}

Status FileNode::co_flush() {
    if (open_flags().cache_no_flush) return {};
    int err = -1;
#ifdef COBLOCK_HAVE_IO_URING
    if (aio_ == AioMode::kIoUring) {
        const long ret = io_uring_->co_submit(IoUring::Op::kFdatasync, fd_, nullptr, 0, 0, 0);
        if (ret != -EAGAIN) err = ret < 0 ? static_cast<int>(-ret) : 0;  // else: thread pool
    }
#endif
    if (err < 0) err = co_run([&] { return file_posix::datasync(fd_); });
    if (err != 0) return errno_error(err, "flush of '" + filename() + "'");
    return {};
}

// ---- Block status -----------------------------------------------------------------

Result<BlockStatus> FileNode::co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) {
    BlockStatus status;
    status.offset = offset;
    status.file = this;
    status.bytes = bytes;
    status.flags = kStatusData;
    if (want_zero) {
        ASSIGN_OR_RETURN(file_posix::Allocation run,
                         co_run([&] { return file_posix::find_allocation(fd_, offset); }));
        const uint64_t align = limits().request_alignment;
        switch (run.kind) {
            case file_posix::Allocation::kTrailingHole:
                status.flags = kStatusZero;
                break;
            case file_posix::Allocation::kUnknown:
                break;  // no information: everything is data
            case file_posix::Allocation::kData: {
                // A data run may end in a partial block at EOF; round up, as
                // callers only take aligned answers.
                const uint64_t run_bytes = run.end - offset;
                status.bytes = (run_bytes + align - 1) / align * align;
                break;
            }
            case file_posix::Allocation::kHole: {
                const uint64_t run_bytes = (run.end - offset) / align * align;
                // A hole shorter than the alignment: report it as data
                // (always a safe answer).
                if (run_bytes > 0) {
                    status.bytes = run_bytes;
                    status.flags = kStatusZero;
                } else {
                    status.bytes = align;
                }
                break;
            }
        }
        status.bytes = std::min(status.bytes, bytes);
    }
    status.flags |= kStatusOffsetValid | kStatusAllocated;
    if (offset + status.bytes >= size()) status.flags |= kStatusEof;
    return status;
}

// ---- Size -------------------------------------------------------------------------

Status FileNode::co_truncate(uint64_t new_size, bool exact, Prealloc prealloc, bool shrink_ok) {
    (void)shrink_ok;  // the protocol always can; tools ask (qemu-img resize --shrink)
    if (!is_block_device_) {
        TRY(co_run([&] { return file_posix::truncate_regular(fd_, new_size, prealloc); }));
        set_size(new_size);
        return {};
    }
    if (prealloc != Prealloc::kOff)
        return unsupported_error(std::string("Preallocation mode '") + prealloc_name(prealloc) +
                                 "' unsupported for this non-regular file");
    ASSIGN_OR_RETURN(uint64_t length, co_run([&] { return file_posix::get_length(fd_); }));
    if (new_size != length && exact) return unsupported_error("Cannot resize device files");
    if (new_size > length) return invalid_argument("Cannot grow device files");
    return {};
}

int64_t FileNode::allocated_size() {
    struct stat st;
    if (fstat(fd_, &st) != 0) return -1;
    return static_cast<int64_t>(st.st_blocks) * 512;
}

// ---- Reopen and permissions -----------------------------------------------------

Status FileNode::co_reopen(const OpenFlags& flags) {
    const OpenFlags& old = open_flags();
    if (old.read_only != flags.read_only) {
        int mode = flags.read_only ? O_RDONLY : O_RDWR;
        if (flags.cache_direct) mode |= O_DIRECT;
        ASSIGN_OR_RETURN(int new_fd,
                         run_blocking([&] { return file_posix::open_file(filename(), mode); }));
        // Same bytes on the new descriptor first: other processes must never
        // see a moment without our locks. No check: our old descriptor
        // holds them too and would count as a conflict.
        if (use_locks_) {
            if (Status s = locks_.copy_to(new_fd); !s.ok()) {
                close(new_fd);
                return s;
            }
        }
        close(fd_);  // releases the old descriptor's locks
        fd_ = new_fd;
    } else if (old.cache_direct != flags.cache_direct) {
        int fl = fcntl(fd_, F_GETFL);
        if (fl < 0) return errno_error(errno, "Could not get the file status flags");
        fl = flags.cache_direct ? (fl | O_DIRECT) : (fl & ~O_DIRECT);
        if (fcntl(fd_, F_SETFL, fl) != 0)
            return errno_error(errno, "Could not set O_DIRECT on '" + filename() + "'");
    } else {
        return {};
    }
    return refresh_limits(flags.cache_direct);
}

Status FileNode::update_permissions(uint32_t perm, uint32_t shared) {
    if (!use_locks_) return {};
    return locks_.update(fd_, perm, shared, filename());
}

}  // namespace coblock
