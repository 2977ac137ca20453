// A read-only view of one internal snapshot of an open qcow2 image, for
// `convert -l` (QEMU's qcow2_snapshot_load_tmp: the snapshot's L1 table in
// place of the active one; size and backing file stay the image's). Reads
// go straight to the image file through the pure parsers of formats/qcow2;
// every table and entry is validated before use, so a damaged snapshot
// gives an error naming the structure, never a wild read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "block/node.h"
#include "block/types.h"
#include "formats/qcow2/geometry.h"
#include "formats/qcow2/l2_entry.h"
#include "formats/qcow2/snapshot.h"
#include "formats/result.h"

namespace coblock::img {

class Qcow2SnapshotReader {
  public:
    // `node` must be an open qcow2 node (it stays open and unchanged while
    // the reader is used). Reads and validates the header and the
    // snapshot's L1 table; call from outside any coroutine.
    static Result<std::unique_ptr<Qcow2SnapshotReader>> open(BlockNode* node,
                                                             const qcow2::SnapshotEntry& snapshot);

    uint64_t size() const { return size_; }

    // Guest bytes [offset, offset + bytes) of the snapshot (within size());
    // unallocated clusters read from the backing file, or as zeros. In a
    // coroutine.
    Status co_read(uint64_t offset, uint64_t bytes, std::byte* buf);

    // The run at `offset` (up to `bytes`) with one mapping: data
    // (normal/compressed), zero, or unallocated (flags 0 when the image has
    // a backing file, which decides; zero otherwise). In a coroutine.
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes);

  private:
    // The type of the subcluster holding `offset` and the entry mapping it.
    struct Lookup {
        qcow2::SubclusterType type = qcow2::SubclusterType::kUnallocatedPlain;
        qcow2::L2Entry entry;
    };
    Result<Lookup> co_lookup(uint64_t offset);
    Result<const std::vector<std::byte>*> co_l2_table(uint64_t l2_offset);
    Status co_read_file(uint64_t offset, std::byte* out, uint64_t len);

    BlockNode* node_ = nullptr;
    qcow2::Geometry geom_;
    uint32_t version_ = 3;
    uint8_t compression_type_ = 0;
    uint64_t size_ = 0;
    bool corruption_reported_ = false;
    std::vector<uint64_t> l1_;
    std::unordered_map<uint64_t, std::vector<std::byte>> l2_tables_;  // by offset
};

}  // namespace coblock::img
