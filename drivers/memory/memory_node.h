// MemoryNode: a protocol node over a byte vector, for tests and whole-driver
// fuzz harnesses (an image held in memory). Not registered as a driver: build
// it directly and attach it with BlockBackend::attach or a format's file
// edge. Limits and an asynchronous completion mode are configurable so the
// request layer can be exercised the way a real disk would.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "block/node.h"

namespace coblock {

struct MemoryNodeOptions {
    BlockLimits limits;
    bool native_zero_writes = true;  // else co_pwrite_zeroes says kUnsupported
    bool growable = true;            // writes past the end extend the buffer
    // When non-zero, writes, zero writes and truncates that would make the
    // buffer larger fail with kNoSpace (fuzz harnesses: a crafted table
    // offset must not make the harness allocate terabytes).
    uint64_t max_size = 0;
    // Called before each request completes; when set, completion waits for
    // a bottom half first (like an AIO completion). Returning false yields
    // once more, so tests can shuffle completion order.
    bool async = false;
    std::function<bool()> complete_now;
};

class MemoryNode final : public BlockNode {
  public:
    explicit MemoryNode(std::vector<std::byte> bytes, MemoryNodeOptions options = {});

    std::vector<std::byte>& bytes() { return bytes_; }
    uint64_t reads() const { return reads_; }
    uint64_t writes() const { return writes_; }
    uint64_t flushes() const { return flushes_; }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override;
    Status co_pdiscard(uint64_t offset, uint64_t bytes) override;
    Status co_flush() override;
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override;
    int64_t allocated_size() override { return static_cast<int64_t>(bytes_.size()); }

  private:
    Status check_request(uint64_t offset, uint64_t bytes, uint64_t qiov_size) const;
    void complete();
    void grow_to(uint64_t end);
    Status check_max_size(uint64_t end) const;

    std::vector<std::byte> bytes_;
    MemoryNodeOptions options_;
    uint64_t reads_ = 0;
    uint64_t writes_ = 0;
    uint64_t flushes_ = 0;
};

}  // namespace coblock
