// The copy engine of `coblock-img convert`: qemu-img 7.2's
// convert_iteration_sectors, convert_co_do_copy and convert_co_write. The
// source is walked by block status through its backing chain; zero and
// unallocated ranges are skipped on a target that reads as zeros (or written
// as zeros); data is read in chunks of up to 2 MiB by `-m` coroutines and
// written in order (out of order with -W), compressed cluster by cluster
// with -c. Progress: specs/qemu-img-output.md §9.
#pragma once

#include <cstdint>
#include <vector>

#include "block/backend.h"
#include "tools/img/options.h"
#include "tools/img/qcow2_snapshot_reader.h"

namespace coblock::img {

inline constexpr int64_t kSector = 512;
inline constexpr int64_t kIoBufSectors = 2 * 1024 * 1024 / kSector;

struct ConvertConfig {
    int num_coroutines = 8;
    bool in_order = true;
    bool compressed = false;
    int64_t min_sparse = 8;  // sectors; 0: write everything (-S 0)
    bool has_zero_init = false;
    bool target_has_backing = false;
    int64_t cluster_sectors = 0;  // target cluster, for -c
    int64_t alignment = 8;        // sectors, for zero detection
    // Size of the target's backing file in sectors (-1: none). Past it the
    // target reads as zeros already, so zero runs there are skipped.
    int64_t target_backing_sectors = -1;
    bool salvage = false;    // --salvage: unreadable sectors become zeros
    bool quiet = false;      // -q: no salvage warnings
    int64_t rate_limit = 0;  // -r: target write bytes per second, 0 = none
    // -c to qcow2 or qcow: writes are ordered by arrival in the driver (see co_worker).
    bool compressed_starts_in_order = false;
};

// One source image; several are concatenated (each starts on a sector).
struct SourcePart {
    BlockBackend* blk = nullptr;
    BlockNode* base = nullptr;  // block status stops here (-B)
    // -l: reads and block status come from this snapshot instead.
    Qcow2SnapshotReader* snapshot = nullptr;
    int64_t start_sector = 0;
    int64_t sectors = 0;
    int64_t bytes = 0;
};

// What the copy did with the source's bytes (for --output=json).
struct ConvertStats {
    int64_t data_bytes = 0;     // written as data
    int64_t zero_bytes = 0;     // zeros: skipped or written as zeros
    int64_t backing_bytes = 0;  // left to the target's backing file
};

// Copies `parts` (concatenated) to `dst` with `config`, as convert_do_copy;
// `count_for_progress` walks the source once first to size the progress
// bar (qemu-img does so only with -p). Ends with QEMU's empty compressed
// write under -c. Returns 0 or -errno (the error has been printed); fills
// `stats`. Call from outside any coroutine.
int run_convert(std::vector<SourcePart> parts, BlockBackend& dst, const ConvertConfig& config,
                Progress& progress, bool count_for_progress, ConvertStats* stats);

}  // namespace coblock::img
