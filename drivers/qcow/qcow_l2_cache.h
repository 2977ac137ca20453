// The in-memory cache of qcow L2 tables (QEMU keeps 16; so do we). Tables
// are held decoded to host-endian raw entries and written through: the
// driver writes every changed entry to the file itself, so an eviction
// never needs a write-back.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace coblock::qcow {

class L2Cache {
  public:
    // QEMU's L2_CACHE_SIZE.
    static constexpr size_t kEntries = 16;

    // The cached table at `offset`, or nullptr (a miss). A hit makes it the
    // most recently used.
    std::vector<uint64_t>* find(uint64_t offset);
    // Stores `table` for `offset`, evicting the least recently used table,
    // and returns the cached copy.
    std::vector<uint64_t>& insert(uint64_t offset, std::vector<uint64_t> table);
    void clear();

    uint64_t hits() const { return hits_; }
    uint64_t misses() const { return misses_; }

  private:
    struct Slot {
        uint64_t offset = 0;  // 0: empty (no L2 table lives at offset 0, the header does)
        uint64_t last_use = 0;
        std::vector<uint64_t> table;
    };
    std::array<Slot, kEntries> slots_;
    uint64_t clock_ = 0;
    uint64_t hits_ = 0;
    uint64_t misses_ = 0;
};

}  // namespace coblock::qcow
