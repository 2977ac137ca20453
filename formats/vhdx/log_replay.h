// VHDX log replay planner: finds the active log sequence in the log
// region's bytes and turns it into the file writes that replay it. Pure.
// Implements spec vhdx.md §11.4, §11.5 and the hostile-log rules of §11.8.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/header.h"
#include "formats/vhdx/log.h"

namespace coblock::vhdx {

// Replay never writes below this: the file identifier and both headers are
// never logged (the region tables at 192 KiB may be).
inline constexpr uint64_t kMinReplayTarget = kRegionTable1Offset;
// 64 TiB of payload plus its BAT, sector bitmaps and metadata fit well
// below 2^47 bytes; a target beyond that is hostile.
inline constexpr uint64_t kMaxReplayTargetEnd = uint64_t{1} << 47;

// One replay write: `data` (4 KiB) at file_offset, or zero_length zero
// bytes at file_offset when `data` is empty.
struct ReplayWrite {
    uint64_t file_offset = 0;
    uint64_t zero_length = 0;
    std::vector<std::byte> data;

    bool operator==(const ReplayWrite&) const = default;
    bool is_zero() const { return data.empty(); }
};

struct LogReplayPlan {
    // False when the header's log GUID is zero (nothing to replay) or when
    // no sequence was found and the caller tolerated that.
    bool active = false;
    // In order, tail entry first; later writes win over earlier ones.
    std::vector<ReplayWrite> writes;
    uint64_t entry_count = 0;
    uint64_t tail_position = 0;        // log offset of the first replayed entry
    uint64_t head_position = 0;        // log offset of the head entry
    uint64_t next_write_position = 0;  // just past the head: where the next entry goes
    uint64_t head_sequence_number = 0;
    uint64_t next_sequence_number = 0;  // head + 1
    uint64_t flushed_file_offset = 0;   // the head's
    uint64_t last_file_offset = 0;      // the head's
    // After the writes, the file must be at least this long (spec §11.5:
    // max(file size, LastFileOffset)); the driver extends it, then flushes.
    uint64_t extend_file_to = 0;

    bool operator==(const LogReplayPlan&) const = default;
};

struct LogReplayOptions {
    // Spec: a set log GUID without a valid sequence makes the file corrupt.
    // QEMU opens such files anyway; a read-only opener may set this to get
    // an inactive plan instead of the error.
    bool tolerate_missing_sequence = false;
};

// Plans the replay for the current `header`, given the log region's bytes
// (at least header.log_length bytes, read from header.log_offset) and the
// file's size. An entry is valid if parse_log_entry accepts it with the
// header's log GUID and every target lies in [192 KiB, 2^47), off the log
// region, without overflow. The active sequence is the valid sequence
// (consecutive sequence numbers, head's tail inside it) with the greatest
// head sequence number, searched as spec §11.4 describes. Errors (corrupt):
// no active sequence while the log GUID is set (unless tolerated); the file
// is shorter than the head's FlushedFileOffset. Cost: each 4 KiB position
// is validated at most once; validation is linear in the entry length.
Result<LogReplayPlan> plan_log_replay(const Header& header, ByteSpan log_region, uint64_t file_size,
                                      const LogReplayOptions& options = {});

}  // namespace coblock::vhdx
