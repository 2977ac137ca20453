// VHDX log entries: the entry header, zero and data descriptors and data
// sectors, decoded with every check of spec §11.3, and the encoder and
// builder the writer uses. Pure. Implements spec vhdx.md §11.2, §11.3, §11.6.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/bytes.h"
#include "formats/result.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/guid.h"

namespace coblock::vhdx {

inline constexpr uint64_t kLogSectorSize = 4096;
inline constexpr size_t kLogEntryHeaderSize = 64;
inline constexpr size_t kLogDescriptorSize = 32;
inline constexpr uint64_t kDescriptorsPerSector = kLogSectorSize / kLogDescriptorSize;  // 128
// The entry header takes the room of two descriptors in the first sector.
inline constexpr uint64_t kHeaderDescriptorSlots = kLogEntryHeaderSize / kLogDescriptorSize;
// Bytes of a 4 KiB update carried in the data sector (the rest in the descriptor).
inline constexpr size_t kLeadingBytes = 8;
inline constexpr size_t kTrailingBytes = 4;

// The 64-byte header of an entry. The checksum is verified by
// parse_log_entry and recomputed by the encoder, so it is not kept.
struct LogEntryHeader {
    uint32_t entry_length = 0;
    uint32_t tail = 0;
    uint64_t sequence_number = 0;
    uint32_t descriptor_count = 0;
    Guid log_guid;
    uint64_t flushed_file_offset = 0;
    uint64_t last_file_offset = 0;

    bool operator==(const LogEntryHeader&) const = default;
};

// Decodes the header from the first bytes of an entry (at least 64) and
// checks what needs no other bytes (spec §11.3 items 1-3, 8 leniently):
// signature "loge"; entry length a non-zero multiple of 4096, at most
// `log_length`; tail a multiple of 4096 below `log_length`; sequence number
// non-zero; descriptor sectors fit in the entry. The log GUID is not judged.
Result<LogEntryHeader> parse_log_entry_header(ByteSpan bytes, uint64_t log_length);

// Descriptor sectors an entry with `descriptor_count` descriptors needs:
// ceil((count + 2) / 128).
uint64_t log_descriptor_sectors(uint64_t descriptor_count);

// One descriptor with its payload: a data descriptor carries the full 4 KiB
// update (reassembled from descriptor and data sector); a zero descriptor a
// length.
struct LogDescriptor {
    enum class Kind : uint8_t { kData, kZero };
    Kind kind = Kind::kData;
    uint64_t file_offset = 0;
    uint64_t zero_length = 0;     // kZero only
    std::vector<std::byte> data;  // kData only: kLogSectorSize bytes

    bool operator==(const LogDescriptor&) const = default;
};

// A whole decoded entry. Sequence numbers inside descriptors and data
// sectors equal header.sequence_number (checked on parse, written on encode).
struct LogEntry {
    LogEntryHeader header;  // descriptor_count is derived from `descriptors` on encode
    std::vector<LogDescriptor> descriptors;

    bool operator==(const LogEntry&) const = default;
};

// Decodes and fully validates one entry from its `bytes` (exactly
// header.entry_length bytes, already unwrapped from the ring): header
// checks as above; log GUID equals `log_guid`; every descriptor has a known
// signature, the header's sequence number and 4 KiB-aligned offsets/lengths;
// every data sector has signature "data" and both sequence halves; the
// CRC-32C matches. Errors are corrupt and name the failing field.
Result<LogEntry> parse_log_entry(ByteSpan bytes, const Guid& log_guid, uint64_t log_length);

// Encodes `entry` into a new buffer of entry_length bytes: descriptor
// sectors, data sectors in descriptor order, zero padding up to
// header.entry_length if it is larger than needed (0 means "exactly
// needed"), checksum. Fails on data that is not 4 KiB, offsets or lengths
// that are not 4 KiB multiples, or an entry longer than 4 GiB.
Result<std::vector<std::byte>> encode_log_entry(const LogEntry& entry);

// One 4 KiB metadata sector to update (for build_log_entry).
struct SectorUpdate {
    uint64_t file_offset = 0;     // 4 KiB aligned
    std::vector<std::byte> data;  // kLogSectorSize bytes: the sector's new content

    bool operator==(const SectorUpdate&) const = default;
};

// What the writer knows when it logs a batch of updates.
struct LogEntryParams {
    Guid log_guid;
    uint64_t sequence_number = 0;
    uint32_t tail = 0;                 // log offset of the oldest unapplied entry
    uint64_t flushed_file_offset = 0;  // stable file size, MiB multiple
    uint64_t last_file_offset = 0;     // size covering every allocation, MiB multiple
};

// Builds the entry for `updates` (one data descriptor each, in order) and
// `zero_ranges` (file offset, length) pairs, and encodes it. Checks the
// params: non-zero GUID and sequence, 4 KiB-aligned tail, MiB-aligned file
// offsets. Returns the encoded bytes (entry_length = their size).
Result<std::vector<std::byte>> build_log_entry(
    const LogEntryParams& params, std::span<const SectorUpdate> updates,
    std::span<const std::pair<uint64_t, uint64_t>> zero_ranges = {});

// The file writes that place an encoded entry into the ring at
// `write_position` (a log-relative, 4 KiB-aligned offset), split where the
// ring wraps. Fails if the entry is longer than the log or the position is
// not inside it.
struct LogWrite {
    uint64_t file_offset = 0;
    std::vector<std::byte> bytes;

    bool operator==(const LogWrite&) const = default;
};
Result<std::vector<LogWrite>> place_log_entry(uint64_t log_offset, uint64_t log_length,
                                              uint64_t write_position, ByteSpan entry);

}  // namespace coblock::vhdx
