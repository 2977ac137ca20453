// The request layer (QEMU's block/io.c): the one place that enforces a
// node's limits. Parents (format drivers, filters, backends) do I/O on a child
// edge through these functions and may pass any offset, length and buffer;
// the callee's driver hooks then only see requests that satisfy its
// BlockLimits: bounce buffers for misaligned memory, read-modify-write for
// unaligned ranges (serialised against overlapping requests), splitting at
// max_transfer, zero writes emulated with zero buffers, FUA emulated with a
// flush, discards trimmed to the granularity, bounds and permission checks.
#pragma once

#include <cstdint>

#include "block/child.h"
#include "block/iovec.h"
#include "block/node.h"
#include "block/types.h"
#include "formats/result.h"

namespace coblock {

// Reads `bytes` at `offset` into `qiov` (qiov.size() >= bytes). Reads past
// the end of the node fail with kOutOfRange.
Status co_child_preadv(BdrvChild* child, uint64_t offset, uint64_t bytes, IoVector& qiov,
                       uint32_t flags = 0);
// Writes; needs kPermWrite (or kPermWriteUnchanged) on the edge and a
// read-write node.
Status co_child_pwritev(BdrvChild* child, uint64_t offset, uint64_t bytes, IoVector& qiov,
                        uint32_t flags = 0);
Status co_child_pread(BdrvChild* child, uint64_t offset, void* buf, size_t bytes);
Status co_child_pwrite(BdrvChild* child, uint64_t offset, const void* buf, size_t bytes,
                       uint32_t flags = 0);
// Makes the range read as zeros: the driver's hook when it has one, else
// written zero buffers, or kUnsupported when `flags` has kReqNoFallback.
Status co_child_pwrite_zeroes(BdrvChild* child, uint64_t offset, uint64_t bytes,
                              uint32_t flags = 0);
// Advisory discard, passed down only where the node supports it and the
// node was opened with discard=unmap.
Status co_child_pdiscard(BdrvChild* child, uint64_t offset, uint64_t bytes);
// Flushes the node, then its children (depth first), as bdrv_co_flush.
Status co_child_flush(BdrvChild* child);
Status co_node_flush(BlockNode* node);
// Resizes (needs kPermResize on the edge).
Status co_child_truncate(BdrvChild* child, uint64_t size, bool exact, Prealloc prealloc,
                         bool shrink_ok);

// Status of the run at `offset` in `node` alone (allocated here or not).
Result<BlockStatus> co_node_block_status(BlockNode* node, uint64_t offset, uint64_t bytes,
                                         bool want_zero);
// Status through the backing chain from `top` down to (not including)
// `base` (nullptr: the whole chain): unallocated ranges are looked up in
// the backing node; `depth` says where the data was found. Ranges not
// allocated anywhere read as zeros (kStatusZero) unless a backing image is
// shorter, which reads as zeros too.
Result<BlockStatus> co_block_status_above(BlockNode* top, BlockNode* base, uint64_t offset,
                                          uint64_t bytes, bool want_zero);
// Whether [offset, offset+bytes) is allocated in `top` itself (qemu-io's
// alloc): returns the run length and sets `*allocated`.
Result<uint64_t> co_is_allocated(BlockNode* top, uint64_t offset, uint64_t bytes, bool* allocated);

// Waits until no request is in flight on `node` (QEMU's drain).
void co_drain(BlockNode* node);

}  // namespace coblock
