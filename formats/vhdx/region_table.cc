// VHDX region table. Pure. Implements spec vhdx.md §6.
#include "formats/vhdx/region_table.h"

#include <cstring>
#include <set>

namespace coblock::vhdx {
namespace {

constexpr uint32_t kRegionTableSignature = 0x69676572;  // "regi"
constexpr uint32_t kRegionRequiredBit = 1;

std::string region_name(const Guid& guid) {
    if (guid == kBatRegionGuid) return "bat region";
    if (guid == kMetadataRegionGuid) return "metadata region";
    return "region " + guid.to_string();
}

}  // namespace

Result<RegionTable> parse_region_table(ByteSpan bytes) {
    if (bytes.size() < kRegionTableSize)
        return invalid_argument("vhdx: region table needs " + std::to_string(kRegionTableSize) +
                                " bytes, got " + std::to_string(bytes.size()));
    bytes = bytes.first(kRegionTableSize);
    ByteReader reader(bytes);
    const uint32_t signature = reader.le32();
    if (signature != kRegionTableSignature)
        return corrupt_error("vhdx: region table signature " + hex(signature) + " is not 'regi'");
    const uint32_t checksum = reader.le32();
    const uint32_t computed = structure_checksum(bytes);
    if (checksum != computed)
        return corrupt_error("vhdx: region table checksum " + hex(checksum) + " does not match " +
                             hex(computed));
    const uint32_t count = reader.le32();
    if (count > kMaxRegionTableEntries)
        return corrupt_error("vhdx: region table entry count " + std::to_string(count) +
                             " exceeds limit " + std::to_string(kMaxRegionTableEntries));
    reader.seek(kRegionTableHeaderSize);
    RegionTable table;
    table.entries.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
        RegionTableEntry e;
        e.guid = read_guid(reader);
        e.file_offset = reader.le64();
        e.length = reader.le32();
        e.required = (reader.le32() & kRegionRequiredBit) != 0;
        table.entries.push_back(e);
    }
    if (!reader.ok()) return corrupt_error("vhdx: region table entries run past 64 kib");
    return table;
}

Status encode_region_table(const RegionTable& table, MutableByteSpan out) {
    if (out.size() < kRegionTableSize)
        return invalid_argument("vhdx: region table buffer of " + std::to_string(out.size()) +
                                " bytes is too small");
    if (table.entries.size() > kMaxRegionTableEntries)
        return invalid_argument("vhdx: region table entry count " +
                                std::to_string(table.entries.size()) + " exceeds limit " +
                                std::to_string(kMaxRegionTableEntries));
    MutableByteSpan slot = out.first(kRegionTableSize);
    std::memset(slot.data(), 0, slot.size());
    ByteWriter writer(slot);
    writer.le32(kRegionTableSignature);
    writer.le32(0);  // checksum, filled below
    writer.le32(static_cast<uint32_t>(table.entries.size()));
    writer.le32(0);
    for (const RegionTableEntry& e : table.entries) {
        write_guid(writer, e.guid);
        writer.le64(e.file_offset);
        writer.le32(e.length);
        writer.le32(e.required ? kRegionRequiredBit : 0);
    }
    store_structure_checksum(slot);
    return ok_status();
}

Result<RegionTableChoice> select_region_table(ByteSpan copy1, ByteSpan copy2) {
    Result<RegionTable> first = parse_region_table(copy1);
    if (first.ok()) return RegionTableChoice{std::move(*first), 0};
    Result<RegionTable> second = parse_region_table(copy2);
    if (second.ok()) return RegionTableChoice{std::move(*second), 1};
    return std::move(first).error();
}

Result<KnownRegions> classify_regions(const RegionTable& table) {
    KnownRegions known;
    bool have_bat = false;
    bool have_metadata = false;
    std::set<Guid> seen;
    for (const RegionTableEntry& e : table.entries) {
        const std::string name = region_name(e.guid);
        if (!seen.insert(e.guid).second)
            return corrupt_error("vhdx: region table lists " + name + " twice");
        if (e.file_offset < kHeaderSectionSize || e.file_offset % kObjectAlignment != 0)
            return corrupt_error("vhdx: " + name + " offset " + hex(e.file_offset) +
                                 " is not a mib-aligned offset past the header section");
        if (e.length == 0 || e.length % kObjectAlignment != 0)
            return corrupt_error("vhdx: " + name + " length " + hex(e.length) +
                                 " is not a non-zero multiple of 1 mib");
        uint64_t end;
        if (!checked_add(e.file_offset, e.length, &end))
            return corrupt_error("vhdx: " + name + " offset " + hex(e.file_offset) +
                                 " plus length overflows");
        if (e.guid == kBatRegionGuid) {
            known.bat = e;
            have_bat = true;
        } else if (e.guid == kMetadataRegionGuid) {
            known.metadata = e;
            have_metadata = true;
        } else if (e.required) {
            return unsupported_error("vhdx: unknown required region " + e.guid.to_string());
        } else {
            known.others.push_back(e);
        }
    }
    if (!have_bat) return corrupt_error("vhdx: region table has no bat region");
    if (!have_metadata) return corrupt_error("vhdx: region table has no metadata region");
    return known;
}

}  // namespace coblock::vhdx
