// CrashNode: a test-only protocol node over bytes in memory that "crashes"
// after its Nth operation (write or flush): that operation and every later
// write or flush fail with EIO. It keeps two images: `bytes()` (everything written before the
// crash, as if the OS wrote back its whole cache) and `durable()` (the bytes at the last successful
// flush, as if every unflushed write was lost), and can make images where only some unflushed
// writes survived. It also logs the debug events raised on it and its writes and flushes, like
// blkdebug's trace ("l2_update", "W 4096+8", "F").
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "block/driver.h"
#include "block/node.h"

namespace coblock::qcow::testing {

inline const BlockDriver kCrashNodeDriver{.name = "crash-test", .kind = DriverKind::kProtocol};

class CrashNode final : public BlockNode {
  public:
    CrashNode(std::vector<std::byte> bytes, uint64_t fail_after_writes)
        : BlockNode(kCrashNodeDriver),
          bytes_(std::move(bytes)),
          durable_(bytes_),
          fail_after_(fail_after_writes) {
        set_size(bytes_.size());
    }

    const std::vector<std::byte>& bytes() const { return bytes_; }
    const std::vector<std::byte>& durable() const { return durable_; }
    uint64_t operations() const { return operations_; }
    // durable() plus a pseudo-random subset (fixed by `seed`) of the writes
    // made since the last flush, applied in order: a disk that wrote back
    // some of its cache before the crash, in any order.
    std::vector<std::byte> durable_plus_subset(uint32_t seed) const {
        std::vector<std::byte> out = durable_;
        uint32_t x = seed * 2654435761u + 12345u;
        for (const Pending& w : pending_) {
            x = x * 1103515245u + 12345u;
            if (((x >> 16) & 1) == 0) continue;
            if (w.offset + w.data.size() > out.size()) out.resize(w.offset + w.data.size());
            std::memcpy(out.data() + w.offset, w.data.data(), w.data.size());
        }
        return out;
    }
    bool crashed() const { return crashed_; }
    std::vector<std::string>& log() { return log_; }

    // Records the events the qcow driver raises. The request layer's own
    // events for writes and flushes arriving here (pwritev, pwritev_done,
    // flush_to_*, ...) are left out: they are not the driver's.
    void co_debug_event(BlkdebugEvent event) override {
        switch (event) {
            case BlkdebugEvent::kPwritev:
            case BlkdebugEvent::kPwritevZero:
            case BlkdebugEvent::kPwritevDone:
            case BlkdebugEvent::kPwritevRmwHead:
            case BlkdebugEvent::kPwritevRmwAfterHead:
            case BlkdebugEvent::kPwritevRmwTail:
            case BlkdebugEvent::kPwritevRmwAfterTail:
            case BlkdebugEvent::kFlushToOs:
            case BlkdebugEvent::kFlushToDisk:
                return;
            default:
                log_.emplace_back(blkdebug_event_name(event));
        }
    }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) override {
        const uint64_t have = offset >= bytes_.size() ? 0 : std::min(bytes, bytes_.size() - offset);
        qiov.copy_from(0, bytes_.data() + offset, have);
        if (have < bytes) qiov.fill(have, 0, bytes - have);
        return {};
    }

    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) override {
        if (crashed_ || operations_ >= fail_after_) {
            crashed_ = true;
            return crash_error();
        }
        ++operations_;
        log_.push_back("W " + std::to_string(offset) + "+" + std::to_string(bytes));
        if (offset + bytes > bytes_.size()) bytes_.resize(offset + bytes);
        qiov.copy_to(0, bytes_.data() + offset, bytes);
        pending_.push_back({offset, std::vector<std::byte>(bytes_.begin() + offset,
                                                           bytes_.begin() + offset + bytes)});
        return {};
    }

    Status co_flush() override {
        if (crashed_ || operations_ >= fail_after_) {
            crashed_ = true;
            return crash_error();
        }
        ++operations_;
        log_.push_back("F");
        durable_ = bytes_;
        pending_.clear();
        return {};
    }

    Status co_truncate(uint64_t size, bool, Prealloc, bool shrink_ok) override {
        if (crashed_) return crash_error();
        if (size < bytes_.size() && !shrink_ok) return invalid_argument("shrink");
        bytes_.resize(size);
        set_size(size);
        return {};
    }

  private:
    static Error crash_error() {
        return Error{ErrorKind::kIo, EIO, "crash-test: the disk has crashed", std::nullopt};
    }

    std::vector<std::byte> bytes_;
    std::vector<std::byte> durable_;
    uint64_t fail_after_;
    uint64_t operations_ = 0;
    bool crashed_ = false;
    std::vector<std::string> log_;
    struct Pending {
        uint64_t offset;
        std::vector<std::byte> data;
    };
    std::vector<Pending> pending_;  // writes since the last flush
};

}  // namespace coblock::qcow::testing
