// FileNode: the node of the `file` protocol driver (QEMU's file-posix.c
// BDRVRawState with its raw_co_* functions): a regular file or block device
// read and written through libaio, io_uring or the thread pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block/driver.h"
#include "block/node.h"
#include "drivers/file/file_locks.h"
#include "drivers/file/file_posix.h"

namespace coblock {

class LinuxAio;
class IoUring;

// What file_driver.cc parsed from the options.
struct FileNodeConfig {
    std::string path;  // "file:" prefix already removed
    AioMode aio = AioMode::kThreads;
    bool use_locks = true;      // locking=auto/on (OFD locks exist on Linux)
    bool devices_only = false;  // host_device: refuse regular files
};

class FileNode final : public BlockNode {
  public:
    // Opens the file with `flags` (read-only or read-write, O_DIRECT for
    // cache.direct) and sets size, limits and flags. For O_DIRECT the
    // alignment is probed (QEMU's raw_probe_alignment) and advertised as
    // request_alignment and memory_alignment, so the request layer bounces
    // for us. aio=native needs cache.direct (QEMU's error); when libaio or
    // io_uring cannot be set up the node falls back to the thread pool and
    // says so in `warnings`. Errors carry QEMU's texts ("Could not open
    // 'x': No such file or directory"). Locks are taken later, when parents
    // attach (update_permissions).
    static Result<std::unique_ptr<FileNode>> co_open(const BlockDriver& driver,
                                                     const FileNodeConfig& config,
                                                     const OpenFlags& flags,
                                                     std::vector<std::string>& warnings);
    ~FileNode() override;

    // Reads past the end of the file return zeros (short reads are padded,
    // as QEMU's). Writes honour kReqFua with RWF_DSYNC on every path
    // (ignored under cache=unsafe).
    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    // fallocate (ZERO_RANGE, or PUNCH_HOLE with kReqMayUnmap) or BLKZEROOUT;
    // kUnsupported when the file system has neither.
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override;
    // PUNCH_HOLE|KEEP_SIZE or BLKDISCARD; unsupported is not an error.
    Status co_pdiscard(uint64_t offset, uint64_t bytes) override;
    // fdatasync, skipped under cache.no-flush.
    Status co_flush() override;
    // SEEK_DATA/SEEK_HOLE as QEMU's raw_co_block_status: data runs are
    // kStatusData, holes kStatusZero; both carry kStatusOffsetValid (offset
    // maps to itself in this node) and kStatusAllocated (a protocol node
    // decides everything, as QEMU's generic layer adds ALLOCATED to
    // protocol answers); kStatusEof when the run reaches the end.
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) override;
    // Regular files: off/falloc/full as QEMU; shrinking is allowed here
    // (tools check shrink_ok, as qemu-img does). Block devices cannot be
    // resized: an exact size other than theirs fails.
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override;
    nlohmann::ordered_json info_specific() override { return nullptr; }
    // st_blocks * 512.
    int64_t allocated_size() override;
    // QEMU's file-posix answers with no cluster size and no VM state.
    Result<NodeInfo> get_info() override { return NodeInfo{}; }
    // Read-only <-> read-write reopens the file with the new access mode and
    // moves the locks to the new descriptor; cache.direct changes switch
    // O_DIRECT and probe the alignment again.
    Status co_reopen(const OpenFlags& flags) override;
    // Mirrors the parents' permissions into OFD locks (file_locks.h).
    Status update_permissions(uint32_t perm, uint32_t shared) override;

    // For tests and the graph query.
    AioMode aio_mode() const { return aio_; }
    bool is_block_device() const { return is_block_device_; }
    int fd() const { return fd_; }

  private:
    FileNode(const BlockDriver& driver, int fd, bool is_block_device);

    // Sets request/memory alignment for the current O_DIRECT state.
    Status refresh_limits(bool direct);
    // One read or write through the node's aio path; `iov` is the caller's
    // (stack) array and may be consumed. Returns bytes or -errno.
    long co_rw(bool is_write, struct iovec* iov, int iovcnt, uint64_t offset, uint64_t bytes,
               int rw_flags);
    Status co_readv_writev(bool is_write, uint64_t offset, uint64_t bytes, IoVector& qiov,
                           uint32_t flags);

    int fd_ = -1;
    bool is_block_device_ = false;
    AioMode aio_ = AioMode::kThreads;
    std::shared_ptr<LinuxAio> linux_aio_;
#ifdef COBLOCK_HAVE_IO_URING
    std::shared_ptr<IoUring> io_uring_;
#endif
    bool use_locks_ = true;
    FileLocks locks_;
    file_posix::Capabilities caps_;
};

}  // namespace coblock
