// qcow2 internal snapshot table: entries with their extra data, parsed and
// preserved verbatim (unknown extra bytes included), plus an encoder.
// Pure. Implements specs/qcow2.txt "Snapshots" and specs/qcow2-notes.md §2
// item 22, §14.2 (snapshot checks) and §18.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow2/geometry.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// Fixed part of a snapshot table entry, before extra data, ID and name.
inline constexpr uint64_t kSnapshotFixedBytes = 40;

struct SnapshotEntry {
    uint64_t l1_table_offset = 0;
    uint32_t l1_size = 0;
    uint32_t date_sec = 0;
    uint32_t date_nsec = 0;
    uint64_t vm_clock_nsec = 0;
    uint32_t vm_state_size = 0;  // 32-bit field; superseded by vm_state_size_large
    // Extra data, decoded field by field; a field is present only when the
    // extra data covers it completely, and only after all earlier fields.
    std::optional<uint64_t> vm_state_size_large;
    std::optional<uint64_t> disk_size;
    std::optional<uint64_t> icount;  // ~0 (-1): icount was disabled
    // Extra data bytes after the last decoded field (future fields, or a
    // partial field), kept verbatim. Shorter than 8 bytes unless icount is set.
    std::vector<std::byte> unknown_extra;
    std::string id;
    std::string name;
    bool operator==(const SnapshotEntry&) const = default;
};

// Size of the extra data the entry encodes to.
uint64_t snapshot_extra_data_size(const SnapshotEntry& entry);

// The VM state size QEMU uses: the 64-bit field when present.
inline uint64_t snapshot_vm_state_size(const SnapshotEntry& entry) {
    return entry.vm_state_size_large.value_or(entry.vm_state_size);
}
// Missing disk_size defaults to the current disk size (QEMU's rule).
inline uint64_t snapshot_disk_size(const SnapshotEntry& entry, uint64_t current_disk_size) {
    return entry.disk_size.value_or(current_disk_size);
}

// The snapshot table has no stored length: each entry's size is in its own
// fixed part. scan_snapshot_table tells the driver how much to read.
struct SnapshotTableScan {
    bool complete = false;
    // complete: the table's size in bytes (end of the last entry, without
    // trailing padding, as QEMU computes it). Otherwise: read at least this
    // many bytes from snapshots_offset and scan again.
    uint64_t bytes = 0;
    bool operator==(const SnapshotTableScan&) const = default;
};

// Walks the entries present in `prefix` (the first bytes of the table).
// kCorrupt when an entry has more than 1024 bytes of extra data or the table
// exceeds 64 MiB (both QEMU limits), or nb_snapshots exceeds 65536.
Result<SnapshotTableScan> scan_snapshot_table(ByteSpan prefix, uint32_t nb_snapshots);

// Parses `nb_snapshots` entries from `table` (which holds at least the size
// scan_snapshot_table returned). Same errors, plus kCorrupt if truncated.
// Entries start at 8-byte aligned positions relative to the table start.
Result<std::vector<SnapshotEntry>> parse_snapshot_table(ByteSpan table, uint32_t nb_snapshots);

// Encodes entries back to back, each padded to 8 bytes except the last.
// kInvalidArgument for an ID or name longer than 65535 bytes, extra data
// above 1024 bytes, extra fields out of order, too many entries or a table
// above 64 MiB.
Result<std::vector<std::byte>> encode_snapshot_table(std::span<const SnapshotEntry> entries);

// Consistency of one parsed entry, as `qemu-img check` judges it (kCorrupt,
// naming the snapshot index): L1 table offset cluster aligned, L1 size
// within 32 MiB, and version 3 entries carrying at least 16 bytes of extra
// data (vm_state_size_large and disk_size).
Status validate_snapshot_entry(const SnapshotEntry& entry, const Geometry& geometry,
                               uint32_t version, uint64_t index);

}  // namespace coblock::qcow2
