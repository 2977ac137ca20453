// Debug events (QEMU's BlkdebugEvent): named points in a driver's work —
// "about to write an L2 entry", "about to flush to disk" — that a fault
// injection filter below the driver (drivers/blkdebug) can fail or suspend.
// Drivers raise them on the child the I/O goes to, as QEMU's BLKDBG_EVENT
// does; a node that is not a debug filter ignores them.
#pragma once

#include <optional>
#include <string_view>

#include "formats/result.h"

namespace coblock {

class BdrvChild;
class BlockNode;

// QEMU 7.2's enum, in its order (the index is part of the contract: config
// files and the `break` command use the names, traces use the order).
enum class BlkdebugEvent {
    kL1Update,
    kL1GrowAllocTable,
    kL1GrowWriteTable,
    kL1GrowActivateTable,
    kL2Load,
    kL2Update,
    kL2UpdateCompressed,
    kL2AllocCowRead,
    kL2AllocWrite,
    kReadAio,
    kReadBackingAio,
    kReadCompressed,
    kWriteAio,
    kWriteCompressed,
    kVmstateLoad,
    kVmstateSave,
    kCowRead,
    kCowWrite,
    kReftableLoad,
    kReftableGrow,
    kReftableUpdate,
    kRefblockLoad,
    kRefblockUpdate,
    kRefblockUpdatePart,
    kRefblockAlloc,
    kRefblockAllocHookup,
    kRefblockAllocWrite,
    kRefblockAllocWriteBlocks,
    kRefblockAllocWriteTable,
    kRefblockAllocSwitchTable,
    kClusterAlloc,
    kClusterAllocBytes,
    kClusterFree,
    kFlushToOs,
    kFlushToDisk,
    kPwritevRmwHead,
    kPwritevRmwAfterHead,
    kPwritevRmwTail,
    kPwritevRmwAfterTail,
    kPwritev,
    kPwritevZero,
    kPwritevDone,
    kEmptyImagePrepare,
    kL1ShrinkWriteTable,
    kL1ShrinkFreeL2Clusters,
    kCorWrite,
    kClusterAllocSpace,
    kNone,
};
inline constexpr int kBlkdebugEventCount = static_cast<int>(BlkdebugEvent::kNone) + 1;

// "l1_update", ...; and back (nullopt for an unknown name).
std::string_view blkdebug_event_name(BlkdebugEvent event);
std::optional<BlkdebugEvent> parse_blkdebug_event(std::string_view name);

// Raises `event` on the node below `child` (nothing when child is null).
// May suspend the calling coroutine (a blkdebug breakpoint), so call it
// from a coroutine, and never while holding a lock a resumer would need.
void co_debug_event(BdrvChild* child, BlkdebugEvent event);

// The qemu-io `break`, `remove_break`, `resume` and `wait_break` commands:
// they act on the first debug node found from `root` down primary children
// (never backing). kUnsupported when there is none.
Status debug_breakpoint(BlockNode* root, std::string_view event, std::string_view tag);
Status debug_remove_breakpoint(BlockNode* root, std::string_view tag);
Status debug_resume(BlockNode* root, std::string_view tag);
bool debug_is_suspended(BlockNode* root, std::string_view tag);

}  // namespace coblock
