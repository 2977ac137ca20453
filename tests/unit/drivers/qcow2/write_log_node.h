// WriteLogNode: a test-only protocol node over bytes in memory that records,
// in completion order, every write, zero write, discard and flush reaching
// it, so a crash-consistency test can rebuild the image as it would be after
// a crash at any point: `replay(prefix)` applies the first `prefix` entries
// in order (a disk that writes back in order), `replay_subset(prefix, seed)`
// applies everything up to the last flush in the prefix plus a random subset
// of the later writes (a disk cache that wrote back some of its contents, in
// any order). Writes complete after a bottom half (like AIO), so concurrent
// requests above interleave.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "block/driver.h"
#include "block/node.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock::testing {

inline const BlockDriver kWriteLogDriver{.name = "write-log-test", .kind = DriverKind::kProtocol};

class WriteLogNode final : public BlockNode {
  public:
    struct Entry {
        enum Kind { kWrite, kFlush, kTruncate } kind = kWrite;
        uint64_t offset = 0;          // kWrite: file offset; kTruncate: new size
        std::vector<std::byte> data;  // kWrite: the bytes (zeros for zero writes/discards)
        bool zero_write = false;      // kWrite: came as a zero write (no buffer)
    };

    explicit WriteLogNode(std::vector<std::byte> bytes)
        : BlockNode(kWriteLogDriver), start_(bytes), bytes_(std::move(bytes)) {
        set_size(bytes_.size());
        set_supported_zero_flags(kReqMayUnmap);
    }

    // Advertise zero writes without fallback (as the file node does), so
    // qcow2 zeroes fresh clusters here rather than writing zero buffers.
    void allow_zero_without_fallback() { set_supported_zero_flags(kReqMayUnmap | kReqNoFallback); }

    const std::vector<Entry>& log() const { return log_; }
    const std::vector<std::byte>& bytes() const { return bytes_; }
    const std::vector<std::byte>& start() const { return start_; }

    // Index of the last flush among the first `prefix` entries, or -1.
    long last_flush_before(size_t prefix) const {
        for (size_t i = prefix; i-- > 0;)
            if (log_[i].kind == Entry::kFlush) return static_cast<long>(i);
        return -1;
    }

    std::vector<std::byte> replay(size_t prefix) const {
        std::vector<std::byte> out = start_;
        for (size_t i = 0; i < prefix; ++i)
            apply(log_[i], out);
        return out;
    }

    std::vector<std::byte> replay_subset(size_t prefix, uint32_t seed) const {
        const long flush = last_flush_before(prefix);
        std::vector<std::byte> out = replay(static_cast<size_t>(flush + 1));
        uint32_t x = seed * 2654435761u + 12345u;
        for (size_t i = static_cast<size_t>(flush + 1); i < prefix; ++i) {
            x = x * 1103515245u + 12345u;
            if ((x >> 16) & 1) apply(log_[i], out);
        }
        return out;
    }

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) override {
        const uint64_t have = offset >= bytes_.size() ? 0 : std::min(bytes, bytes_.size() - offset);
        if (have) qiov.copy_from(0, bytes_.data() + offset, have);
        if (have < bytes) qiov.fill(have, 0, bytes - have);
        return {};
    }

    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) override {
        Entry e{Entry::kWrite, offset, std::vector<std::byte>(bytes)};
        qiov.copy_to(0, e.data.data(), bytes);  // as a DMA reads at submission
        complete_later();
        record(std::move(e));
        return {};
    }

    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t) override {
        complete_later();
        record(Entry{Entry::kWrite, offset, std::vector<std::byte>(bytes), true});
        return {};
    }

    // A punched hole reads as zeros.
    Status co_pdiscard(uint64_t offset, uint64_t bytes) override {
        complete_later();
        if (offset >= bytes_.size()) return {};
        bytes = std::min<uint64_t>(bytes, bytes_.size() - offset);
        record(Entry{Entry::kWrite, offset, std::vector<std::byte>(bytes)});
        return {};
    }

    // Logged when issued: writes completing while it runs are not covered.
    Status co_flush() override {
        log_.push_back(Entry{Entry::kFlush, 0, {}});
        complete_later();
        return {};
    }

    Status co_truncate(uint64_t size, bool, Prealloc, bool shrink_ok) override {
        if (size < bytes_.size() && !shrink_ok) return invalid_argument("write-log: shrink");
        record(Entry{Entry::kTruncate, size, {}});
        set_size(size);
        return {};
    }

  private:
    static void apply(const Entry& e, std::vector<std::byte>& out) {
        if (e.kind == Entry::kTruncate) {
            out.resize(e.offset);
        } else if (e.kind == Entry::kWrite) {
            if (e.offset + e.data.size() > out.size()) out.resize(e.offset + e.data.size());
            std::memcpy(out.data() + e.offset, e.data.data(), e.data.size());
        }
    }

    void record(Entry e) {
        apply(e, bytes_);
        if (bytes_.size() > size()) set_size(bytes_.size());
        log_.push_back(std::move(e));
    }

    static void complete_later() {
        Coroutine* self = Coroutine::self();
        BottomHalf bh(EventLoop::current(), [self] { wake(self); });
        bh.schedule();
        yield();
    }

    std::vector<std::byte> start_;
    std::vector<std::byte> bytes_;
    std::vector<Entry> log_;
};

}  // namespace coblock::testing
