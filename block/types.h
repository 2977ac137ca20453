// The vocabulary of the block layer: request flags, per-node limits, child
// roles, permissions and block status. Values mirror QEMU's where they reach
// the outside world (permission bits become OFD lock bytes shared with QEMU).
#pragma once

#include <cstdint>
#include <string>

namespace coblock {

class BlockNode;

// ---- Request flags (QEMU's BdrvRequestFlags) --------------------------------
enum RequestFlag : uint32_t {
    kReqFua = 1u << 0,              // durable before completion (emulated by flush)
    kReqMayUnmap = 1u << 1,         // zero write may deallocate
    kReqNoFallback = 1u << 2,       // zero write: fail rather than write zero buffers
    kReqWriteCompressed = 1u << 3,  // format writes a compressed cluster
    kReqZeroWrite = 1u << 4,        // internal: the write is a zero write
    kReqCopyOnRead = 1u << 5,       // populate this node from its backing on read
    kReqNoSerialising = 1u << 6,    // internal: skip serialisation wait
};

// ---- Limits ----------------------------------------------------------------
// What a node's driver needs of the requests it receives. The request layer
// enforces them all; drivers never re-check. 0 means "no limit"/"any".
struct BlockLimits {
    uint32_t request_alignment = 1;  // offsets and lengths are multiples of this
    uint32_t memory_alignment = 1;   // buffer addresses and slice lengths too
    uint64_t max_transfer = 0;       // longest read/write passed down
    uint64_t opt_transfer = 0;       // preferred size (hint)
    uint64_t discard_alignment = 0;  // discards are trimmed to this granularity
    uint64_t max_discard = 0;
    uint64_t zero_alignment = 0;  // zero writes use this granularity
    uint64_t max_zero_write = 0;
    uint32_t max_iov = 1024;  // slices per request (IOV_MAX)
};

// ---- Graph -----------------------------------------------------------------
// What a child edge carries (QEMU's BdrvChildRole); several may combine.
enum ChildRole : uint32_t {
    kRoleData = 1u << 0,      // guest data lives here
    kRoleMetadata = 1u << 1,  // format metadata lives here
    kRoleFiltered = 1u << 2,  // the parent is a filter passing I/O through
    kRoleCow = 1u << 3,       // backing image read for copy-on-write
    kRolePrimary = 1u << 4,   // "bs->file" or "bs->backing"-like main child
    kRoleFile = kRoleData | kRoleMetadata | kRolePrimary,  // a format's file
    kRoleBacking = kRoleCow,                               // backing chain
    kRoleDataFile = kRoleData,                             // external data file
    kRoleFilteredChild = kRoleFiltered | kRolePrimary | kRoleData,
};

// Permission bits (QEMU's BLK_PERM_*), the same values: file locking maps
// them to the byte offsets QEMU uses, so the two refuse each other.
enum Permission : uint32_t {
    kPermConsistentRead = 0x01,
    kPermWrite = 0x02,
    kPermWriteUnchanged = 0x04,
    kPermResize = 0x08,
    kPermAll = 0x0f,
};
std::string permission_names(uint32_t perms);  // "write, resize"

// ---- Block status ------------------------------------------------------------
enum BlockStatusFlag : uint32_t {
    kStatusData = 1u << 0,         // reads return data from this node or below
    kStatusZero = 1u << 1,         // reads return zeros
    kStatusOffsetValid = 1u << 2,  // `offset` maps into `file`
    kStatusAllocated = 1u << 3,    // decided by this node (not the backing chain)
    kStatusCompressed = 1u << 4,   // stored compressed
    kStatusEof = 1u << 5,          // the range reaches the end of the node
    kStatusRecurse = 1u << 6,      // driver: ask `file` whether the mapped range is zero
    kStatusFinal = 1u << 7,        // driver: a filtered child's answer, taken as it is
};

struct BlockStatus {
    uint32_t flags = 0;
    uint64_t bytes = 0;         // length of the run with these flags (> 0)
    uint64_t offset = 0;        // host offset in `file` when kStatusOffsetValid
    BlockNode* file = nullptr;  // the node `offset` refers to
    int depth = 0;              // for chain walks: 0 = this node, 1 = its backing...
};

// ---- Open ----------------------------------------------------------------------
enum class CacheMode { kWriteback, kNone, kWritethrough, kDirectsync, kUnsafe };
enum class AioMode { kThreads, kNative, kIoUring };
enum class DiscardMode { kIgnore, kUnmap };
enum class DetectZeroes { kOff, kOn, kUnmap };

struct OpenFlags {
    bool read_only = false;
    bool force_share = false;  // -U: read-only inspection of a busy image
    bool no_backing = false;   // do not open backing files
    bool no_io = false;        // metadata only (qemu-img info)
    bool copy_on_read = false;
    bool cache_direct = false;    // O_DIRECT
    bool cache_no_flush = false;  // flushes ignored (cache=unsafe)
    bool writethrough = false;    // every write is followed by a flush (device level)
    AioMode aio = AioMode::kThreads;
    DiscardMode discard = DiscardMode::kIgnore;
    DetectZeroes detect_zeroes = DetectZeroes::kOff;
    bool locking = true;
    bool check = false;  // opened for qemu-img check (BDRV_O_CHECK): formats relax open checks
};

// Maps "none", "writeback", ... onto OpenFlags as QEMU's bdrv_parse_cache_mode.
bool parse_cache_mode(const std::string& name, OpenFlags& flags);
bool parse_aio_mode(const std::string& name, AioMode& mode);

// ---- Preallocation -----------------------------------------------------------
enum class Prealloc { kOff, kMetadata, kFalloc, kFull };
bool parse_prealloc(const std::string& name, Prealloc& mode);
const char* prealloc_name(Prealloc mode);

}  // namespace coblock
