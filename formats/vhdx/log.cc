// VHDX log entries. Pure. Implements spec vhdx.md §11.2, §11.3 and §11.6.
#include "formats/vhdx/log.h"

#include <algorithm>
#include <cstring>

namespace coblock::vhdx {
namespace {

constexpr uint32_t kEntrySignature = 0x65676F6C;           // "loge"
constexpr uint32_t kDataDescriptorSignature = 0x63736564;  // "desc"
constexpr uint32_t kZeroDescriptorSignature = 0x6F72657A;  // "zero"
constexpr uint32_t kDataSectorSignature = 0x61746164;      // "data"
constexpr size_t kDataSectorPayloadOffset = 8;             // after signature and SequenceHigh
constexpr size_t kDataSectorSequenceLowOffset = kLogSectorSize - 4;
// EntryLength is a u32 field.
constexpr uint64_t kMaxEntryLength = UINT32_MAX / kLogSectorSize * kLogSectorSize;

std::string seq_text(uint64_t seq) {
    return std::to_string(seq);
}

}  // namespace

uint64_t log_descriptor_sectors(uint64_t descriptor_count) {
    return div_round_up(descriptor_count + kHeaderDescriptorSlots, kDescriptorsPerSector);
}

Result<LogEntryHeader> parse_log_entry_header(ByteSpan bytes, uint64_t log_length) {
    ByteReader reader(bytes);
    const uint32_t signature = reader.le32();
    reader.skip(4);  // checksum, verified over the whole entry
    LogEntryHeader h;
    h.entry_length = reader.le32();
    h.tail = reader.le32();
    h.sequence_number = reader.le64();
    h.descriptor_count = reader.le32();
    reader.skip(4);  // reserved
    h.log_guid = read_guid(reader);
    h.flushed_file_offset = reader.le64();
    h.last_file_offset = reader.le64();
    if (!reader.ok())
        return invalid_argument("vhdx: log entry header needs " +
                                std::to_string(kLogEntryHeaderSize) + " bytes, got " +
                                std::to_string(bytes.size()));
    if (signature != kEntrySignature)
        return corrupt_error("vhdx: log entry signature " + hex(signature) + " is not 'loge'");
    if (h.entry_length == 0 || h.entry_length % kLogSectorSize != 0 || h.entry_length > log_length)
        return corrupt_error("vhdx: log entry length " + hex(h.entry_length) +
                             " is not a non-zero multiple of 4096 within the log length " +
                             hex(log_length));
    if (h.tail % kLogSectorSize != 0 || h.tail >= log_length)
        return corrupt_error("vhdx: log entry tail " + hex(h.tail) +
                             " is not a 4096-aligned offset inside the log of " + hex(log_length));
    if (h.sequence_number == 0) return corrupt_error("vhdx: log entry sequence number is 0");
    if (log_descriptor_sectors(h.descriptor_count) > h.entry_length / kLogSectorSize)
        return corrupt_error("vhdx: log entry descriptor count " +
                             std::to_string(h.descriptor_count) + " does not fit in length " +
                             hex(h.entry_length));
    return h;
}

Result<LogEntry> parse_log_entry(ByteSpan bytes, const Guid& log_guid, uint64_t log_length) {
    LogEntry entry;
    ASSIGN_OR_RETURN(entry.header, parse_log_entry_header(bytes, log_length));
    const LogEntryHeader& h = entry.header;
    if (bytes.size() < h.entry_length)
        return invalid_argument("vhdx: log entry of length " + hex(h.entry_length) + " but " +
                                std::to_string(bytes.size()) + " bytes supplied");
    bytes = bytes.first(h.entry_length);
    if (h.log_guid != log_guid)
        return corrupt_error("vhdx: log entry guid " + h.log_guid.to_string() +
                             " does not match the header's log guid " + log_guid.to_string());
    const uint32_t checksum = load_le<uint32_t>(bytes.data() + kChecksumFieldOffset);
    const uint32_t computed = structure_checksum(bytes);
    if (checksum != computed)
        return corrupt_error("vhdx: log entry " + seq_text(h.sequence_number) + " checksum " +
                             hex(checksum) + " does not match " + hex(computed));

    const uint64_t sectors = h.entry_length / kLogSectorSize;
    uint64_t next_data_sector = log_descriptor_sectors(h.descriptor_count);
    const std::string where = "vhdx: log entry " + seq_text(h.sequence_number) + " descriptor ";
    entry.descriptors.reserve(
        std::min<uint64_t>(h.descriptor_count, sectors * kDescriptorsPerSector));
    for (uint64_t i = 0; i < h.descriptor_count; ++i) {
        const uint64_t slot =
            i + kHeaderDescriptorSlots;  // descriptor slots count from the entry start
        ByteReader d(bytes.subspan(slot * kLogDescriptorSize, kLogDescriptorSize));
        const uint32_t signature = d.le32();
        LogDescriptor desc;
        uint64_t sequence;
        if (signature == kZeroDescriptorSignature) {
            desc.kind = LogDescriptor::Kind::kZero;
            d.skip(4);  // reserved
            desc.zero_length = d.le64();
            desc.file_offset = d.le64();
            sequence = d.le64();
            if (desc.zero_length % kLogSectorSize != 0)
                return corrupt_error(where + std::to_string(i) + " zero length " +
                                     hex(desc.zero_length) + " is not a multiple of 4096");
        } else if (signature == kDataDescriptorSignature) {
            desc.kind = LogDescriptor::Kind::kData;
            std::byte trailing[kTrailingBytes], leading[kLeadingBytes];
            d.bytes(trailing, sizeof trailing);
            d.bytes(leading, sizeof leading);
            desc.file_offset = d.le64();
            sequence = d.le64();
            if (next_data_sector >= sectors)
                return corrupt_error(where + std::to_string(i) + " has no data sector in length " +
                                     hex(h.entry_length));
            ByteSpan sector = bytes.subspan(next_data_sector * kLogSectorSize, kLogSectorSize);
            ++next_data_sector;
            const uint32_t data_signature = load_le<uint32_t>(sector.data());
            const uint32_t seq_high = load_le<uint32_t>(sector.data() + 4);
            const uint32_t seq_low =
                load_le<uint32_t>(sector.data() + kDataSectorSequenceLowOffset);
            if (data_signature != kDataSectorSignature)
                return corrupt_error(where + std::to_string(i) + " data sector signature " +
                                     hex(data_signature) + " is not 'data'");
            const uint64_t data_sequence = (uint64_t{seq_high} << 32) | seq_low;
            if (data_sequence != h.sequence_number)
                return corrupt_error(where + std::to_string(i) + " data sector sequence " +
                                     seq_text(data_sequence) + " does not match " +
                                     seq_text(h.sequence_number));
            desc.data.resize(kLogSectorSize);
            std::memcpy(desc.data.data(), leading, kLeadingBytes);
            std::memcpy(desc.data.data() + kLeadingBytes, sector.data() + kDataSectorPayloadOffset,
                        kDataSectorSequenceLowOffset - kDataSectorPayloadOffset);
            std::memcpy(desc.data.data() + kLogSectorSize - kTrailingBytes, trailing,
                        kTrailingBytes);
        } else {
            return corrupt_error(where + std::to_string(i) + " signature " + hex(signature) +
                                 " is neither 'desc' nor 'zero'");
        }
        if (sequence != h.sequence_number)
            return corrupt_error(where + std::to_string(i) + " sequence " + seq_text(sequence) +
                                 " does not match " + seq_text(h.sequence_number));
        if (desc.file_offset % kLogSectorSize != 0)
            return corrupt_error(where + std::to_string(i) + " file offset " +
                                 hex(desc.file_offset) + " is not a multiple of 4096");
        entry.descriptors.push_back(std::move(desc));
    }
    return entry;
}

Result<std::vector<std::byte>> encode_log_entry(const LogEntry& entry) {
    const LogEntryHeader& h = entry.header;
    uint64_t data_count = 0;
    for (const LogDescriptor& d : entry.descriptors) {
        if (d.file_offset % kLogSectorSize != 0)
            return invalid_argument("vhdx: log descriptor file offset " + hex(d.file_offset) +
                                    " is not a multiple of 4096");
        if (d.kind == LogDescriptor::Kind::kData) {
            if (d.data.size() != kLogSectorSize)
                return invalid_argument("vhdx: log data descriptor carries " +
                                        std::to_string(d.data.size()) + " bytes, not 4096");
            ++data_count;
        } else if (d.zero_length % kLogSectorSize != 0) {
            return invalid_argument("vhdx: log zero descriptor length " + hex(d.zero_length) +
                                    " is not a multiple of 4096");
        }
    }
    if (entry.descriptors.size() > UINT32_MAX)
        return invalid_argument("vhdx: log entry has too many descriptors");
    const uint64_t descriptor_sectors = log_descriptor_sectors(entry.descriptors.size());
    const uint64_t needed = (descriptor_sectors + data_count) * kLogSectorSize;
    const uint64_t length = std::max<uint64_t>(needed, h.entry_length);
    if (length > kMaxEntryLength || length % kLogSectorSize != 0)
        return invalid_argument("vhdx: log entry length " + hex(length) +
                                " is not a 4096 multiple below 4 gib");

    std::vector<std::byte> out(length);
    ByteWriter w(out);
    w.le32(kEntrySignature);
    w.le32(0);  // checksum, filled below
    w.le32(static_cast<uint32_t>(length));
    w.le32(h.tail);
    w.le64(h.sequence_number);
    w.le32(static_cast<uint32_t>(entry.descriptors.size()));
    w.le32(0);
    write_guid(w, h.log_guid);
    w.le64(h.flushed_file_offset);
    w.le64(h.last_file_offset);
    uint64_t data_sector = descriptor_sectors;
    for (const LogDescriptor& d : entry.descriptors) {
        if (d.kind == LogDescriptor::Kind::kZero) {
            w.le32(kZeroDescriptorSignature);
            w.le32(0);
            w.le64(d.zero_length);
            w.le64(d.file_offset);
            w.le64(h.sequence_number);
            continue;
        }
        w.le32(kDataDescriptorSignature);
        w.bytes(d.data.data() + kLogSectorSize - kTrailingBytes, kTrailingBytes);
        w.bytes(d.data.data(), kLeadingBytes);
        w.le64(d.file_offset);
        w.le64(h.sequence_number);
        std::byte* sector = out.data() + data_sector * kLogSectorSize;
        store_le<uint32_t>(sector, kDataSectorSignature);
        store_le<uint32_t>(sector + 4, static_cast<uint32_t>(h.sequence_number >> 32));
        std::memcpy(sector + kDataSectorPayloadOffset, d.data.data() + kLeadingBytes,
                    kDataSectorSequenceLowOffset - kDataSectorPayloadOffset);
        store_le<uint32_t>(sector + kDataSectorSequenceLowOffset,
                           static_cast<uint32_t>(h.sequence_number));
        ++data_sector;
    }
    store_structure_checksum(out);
    return out;
}

Result<std::vector<std::byte>> build_log_entry(
    const LogEntryParams& params, std::span<const SectorUpdate> updates,
    std::span<const std::pair<uint64_t, uint64_t>> zero_ranges) {
    if (params.log_guid.is_zero())
        return invalid_argument("vhdx: log entry needs a non-zero log guid");
    if (params.sequence_number == 0)
        return invalid_argument("vhdx: log entry sequence number is 0");
    if (params.tail % kLogSectorSize != 0)
        return invalid_argument("vhdx: log entry tail " + hex(params.tail) +
                                " is not a multiple of 4096");
    if (params.flushed_file_offset % kMiB != 0 || params.last_file_offset % kMiB != 0)
        return invalid_argument("vhdx: log entry file offsets " + hex(params.flushed_file_offset) +
                                " and " + hex(params.last_file_offset) +
                                " must be multiples of 1 mib");
    LogEntry entry;
    entry.header.tail = params.tail;
    entry.header.sequence_number = params.sequence_number;
    entry.header.log_guid = params.log_guid;
    entry.header.flushed_file_offset = params.flushed_file_offset;
    entry.header.last_file_offset = params.last_file_offset;
    for (const SectorUpdate& u : updates)
        entry.descriptors.push_back({LogDescriptor::Kind::kData, u.file_offset, 0, u.data});
    for (const auto& [offset, length] : zero_ranges)
        entry.descriptors.push_back({LogDescriptor::Kind::kZero, offset, length, {}});
    return encode_log_entry(entry);
}

Result<std::vector<LogWrite>> place_log_entry(uint64_t log_offset, uint64_t log_length,
                                              uint64_t write_position, ByteSpan entry) {
    if (entry.size() > log_length)
        return invalid_argument("vhdx: log entry of " + std::to_string(entry.size()) +
                                " bytes does not fit in the log of " + std::to_string(log_length));
    if (write_position >= log_length || write_position % kLogSectorSize != 0)
        return invalid_argument("vhdx: log write position " + hex(write_position) +
                                " is not a 4096-aligned offset inside the log");
    std::vector<LogWrite> writes;
    const uint64_t first = std::min<uint64_t>(entry.size(), log_length - write_position);
    writes.push_back({log_offset + write_position,
                      std::vector<std::byte>(entry.begin(), entry.begin() + first)});
    if (first < entry.size())
        writes.push_back({log_offset, std::vector<std::byte>(entry.begin() + first, entry.end())});
    return writes;
}

}  // namespace coblock::vhdx
