// VHDX metadata table and system items. Pure. Implements spec vhdx.md §7.
#include "formats/vhdx/metadata.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

namespace coblock::vhdx {
namespace {

constexpr uint64_t kMetadataSignature = 0x617461646174656D;  // "metadata"
constexpr uint32_t kFlagIsUser = 1u << 0;
constexpr uint32_t kFlagIsVirtualDisk = 1u << 1;
constexpr uint32_t kFlagIsRequired = 1u << 2;
constexpr uint32_t kFileParamLeaveBlockAllocated = 1u << 0;
constexpr uint32_t kFileParamHasParent = 1u << 1;

constexpr size_t kFileParametersSize = 8;
constexpr size_t kVirtualDiskSizeSize = 8;
constexpr size_t kVirtualDiskIdSize = 16;
constexpr size_t kSectorSizeSize = 4;

struct KnownItem {
    Guid id;
    const char* name;
    bool is_virtual_disk;
};
// The system items in the order a writer packs them (QEMU's order).
constexpr KnownItem kKnownItems[] = {
    {kFileParametersGuid, "file parameters", false},
    {kVirtualDiskSizeGuid, "virtual disk size", true},
    {kVirtualDiskIdGuid, "virtual disk id", true},
    {kLogicalSectorSizeGuid, "logical sector size", true},
    {kPhysicalSectorSizeGuid, "physical sector size", true},
    {kParentLocatorGuid, "parent locator", false},
};

const KnownItem* find_known(const Guid& id) {
    for (const KnownItem& k : kKnownItems)
        if (k.id == id) return &k;
    return nullptr;
}

Status item_length_at_least(ByteSpan item, size_t need, const char* name) {
    if (item.size() < need)
        return corrupt_error("vhdx: metadata item " + std::string(name) + " length " +
                             std::to_string(item.size()) + " is less than " + std::to_string(need));
    return ok_status();
}

Status validate_block_size(uint32_t block_size) {
    if (!is_power_of_two(block_size) || block_size < kMinBlockSize || block_size > kMaxBlockSize)
        return corrupt_error("vhdx: block size " + std::to_string(block_size) +
                             " is not a power of two between 1 mib and 256 mib");
    return ok_status();
}

Status validate_sector_size(uint32_t size, bool logical) {
    if (size != 512 && size != 4096)
        return corrupt_error(std::string("vhdx: ") + (logical ? "logical" : "physical") +
                             " sector size " + std::to_string(size) + " is not 512 or 4096");
    return ok_status();
}

Status validate_virtual_disk_size(uint64_t size, uint32_t logical_sector_size) {
    if (size > kMaxVirtualDiskSize)
        return corrupt_error("vhdx: virtual disk size " + std::to_string(size) + " exceeds limit " +
                             std::to_string(kMaxVirtualDiskSize));
    if (size % logical_sector_size != 0)
        return corrupt_error("vhdx: virtual disk size " + std::to_string(size) +
                             " is not a multiple of the logical sector size " +
                             std::to_string(logical_sector_size));
    return ok_status();
}

Status validate_image_metadata(const ImageMetadata& m) {
    TRY(validate_block_size(m.file_parameters.block_size));
    TRY(validate_sector_size(m.logical_sector_size, true));
    TRY(validate_sector_size(m.physical_sector_size, false));
    TRY(validate_virtual_disk_size(m.virtual_disk_size, m.logical_sector_size));
    if (m.file_parameters.has_parent && !m.parent_locator)
        return corrupt_error("vhdx: file parameters say has_parent but there is no parent locator");
    return ok_status();
}

}  // namespace

Result<MetadataTable> parse_metadata_table(ByteSpan bytes, uint64_t region_length) {
    if (region_length < kMetadataTableSize)
        return corrupt_error("vhdx: metadata region length " + std::to_string(region_length) +
                             " is less than the " + std::to_string(kMetadataTableSize) +
                             "-byte table");
    if (bytes.size() < kMetadataTableSize)
        return invalid_argument("vhdx: metadata table needs " + std::to_string(kMetadataTableSize) +
                                " bytes, got " + std::to_string(bytes.size()));
    ByteReader reader(bytes.first(kMetadataTableSize));
    const uint64_t signature = reader.le64();
    if (signature != kMetadataSignature)
        return corrupt_error("vhdx: metadata table signature " + hex(signature) +
                             " is not 'metadata'");
    reader.skip(2);  // reserved
    const uint16_t count = reader.le16();
    if (count > kMaxMetadataEntries)
        return corrupt_error("vhdx: metadata table entry count " + std::to_string(count) +
                             " exceeds limit " + std::to_string(kMaxMetadataEntries));
    reader.seek(kMetadataTableHeaderSize);

    MetadataTable table;
    table.entries.reserve(count);
    std::set<std::pair<Guid, bool>> seen;
    uint32_t user_entries = 0;
    for (uint16_t i = 0; i < count; ++i) {
        MetadataTableEntry e;
        e.item_id = read_guid(reader);
        e.offset = reader.le32();
        e.length = reader.le32();
        const uint32_t flags = reader.le32();
        reader.skip(4);  // reserved
        e.is_user = flags & kFlagIsUser;
        e.is_virtual_disk = flags & kFlagIsVirtualDisk;
        e.is_required = flags & kFlagIsRequired;
        const std::string name =
            "vhdx: metadata entry " + std::to_string(i) + " (" + e.item_id.to_string() + ")";
        if (e.length > kMaxMetadataItemLength)
            return corrupt_error(name + " length " + std::to_string(e.length) + " exceeds limit " +
                                 std::to_string(kMaxMetadataItemLength));
        if (e.length == 0 && e.offset != 0)
            return corrupt_error(name + " has length 0 but offset " + hex(e.offset));
        if (e.length != 0 && e.offset < kMetadataTableSize)
            return corrupt_error(name + " offset " + hex(e.offset) + " lies inside the table");
        if (uint64_t{e.offset} + e.length > region_length)
            return corrupt_error(name + " at " + hex(e.offset) + "+" + hex(e.length) +
                                 " runs past the metadata region of " + hex(region_length));
        if (!seen.insert({e.item_id, e.is_user}).second)
            return corrupt_error(name + " is listed twice");
        if (e.is_user && ++user_entries > kMaxUserMetadataEntries)
            return corrupt_error("vhdx: metadata table has more than " +
                                 std::to_string(kMaxUserMetadataEntries) + " user entries");
        table.entries.push_back(e);
    }
    // Items must not overlap one another.
    std::vector<const MetadataTableEntry*> by_offset;
    for (const MetadataTableEntry& e : table.entries)
        if (e.length != 0) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(),
              [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const MetadataTableEntry& prev = *by_offset[i - 1];
        const MetadataTableEntry& cur = *by_offset[i];
        if (uint64_t{prev.offset} + prev.length > cur.offset)
            return corrupt_error("vhdx: metadata item " + prev.item_id.to_string() + " at " +
                                 hex(prev.offset) + "+" + hex(prev.length) + " overlaps item " +
                                 cur.item_id.to_string() + " at " + hex(cur.offset));
    }
    return table;
}

Status encode_metadata_table(const MetadataTable& table, MutableByteSpan out) {
    if (out.size() < kMetadataTableSize)
        return invalid_argument("vhdx: metadata table buffer of " + std::to_string(out.size()) +
                                " bytes is too small");
    if (table.entries.size() > kMaxMetadataEntries)
        return invalid_argument("vhdx: metadata table entry count " +
                                std::to_string(table.entries.size()) + " exceeds limit " +
                                std::to_string(kMaxMetadataEntries));
    MutableByteSpan slot = out.first(kMetadataTableSize);
    std::memset(slot.data(), 0, slot.size());
    ByteWriter writer(slot);
    writer.le64(kMetadataSignature);
    writer.le16(0);
    writer.le16(static_cast<uint16_t>(table.entries.size()));
    writer.zeros(20);
    for (const MetadataTableEntry& e : table.entries) {
        write_guid(writer, e.item_id);
        writer.le32(e.offset);
        writer.le32(e.length);
        writer.le32((e.is_user ? kFlagIsUser : 0) | (e.is_virtual_disk ? kFlagIsVirtualDisk : 0) |
                    (e.is_required ? kFlagIsRequired : 0));
        writer.le32(0);
    }
    return ok_status();
}

Result<FileParameters> parse_file_parameters(ByteSpan item) {
    TRY(item_length_at_least(item, kFileParametersSize, "file parameters"));
    FileParameters fp;
    fp.block_size = load_le<uint32_t>(item.data());
    const uint32_t flags = load_le<uint32_t>(item.data() + 4);
    fp.leave_block_allocated = flags & kFileParamLeaveBlockAllocated;
    fp.has_parent = flags & kFileParamHasParent;
    TRY(validate_block_size(fp.block_size));
    return fp;
}

Result<uint64_t> parse_virtual_disk_size(ByteSpan item) {
    TRY(item_length_at_least(item, kVirtualDiskSizeSize, "virtual disk size"));
    return load_le<uint64_t>(item.data());
}

Result<Guid> parse_virtual_disk_id(ByteSpan item) {
    TRY(item_length_at_least(item, kVirtualDiskIdSize, "virtual disk id"));
    return Guid::from_bytes(item);
}

Result<uint32_t> parse_sector_size(ByteSpan item, bool logical) {
    TRY(item_length_at_least(item, kSectorSizeSize,
                             logical ? "logical sector size" : "physical sector size"));
    const uint32_t size = load_le<uint32_t>(item.data());
    TRY(validate_sector_size(size, logical));
    return size;
}

Result<std::vector<MetadataItemRead>> plan_metadata_item_reads(const MetadataTable& table,
                                                               uint64_t region_offset) {
    std::vector<MetadataItemRead> reads;
    for (const MetadataTableEntry& e : table.entries) {
        const KnownItem* known = e.is_user ? nullptr : find_known(e.item_id);
        if (!known) {
            if (e.is_required)
                return unsupported_error("vhdx: unknown required metadata item " +
                                         e.item_id.to_string());
            continue;
        }
        uint64_t file_offset;
        if (!checked_add(region_offset, e.offset, &file_offset))
            return corrupt_error("vhdx: metadata item " + e.item_id.to_string() + " offset " +
                                 hex(e.offset) + " overflows past region " + hex(region_offset));
        reads.push_back({e.item_id, file_offset, e.length});
    }
    return reads;
}

Result<ImageMetadata> parse_image_metadata(const MetadataTable& table,
                                           std::span<const MetadataItemBytes> items) {
    auto bytes_of = [&](const Guid& id) -> const ByteSpan* {
        for (const MetadataItemBytes& item : items)
            if (item.item_id == id) return &item.bytes;
        return nullptr;
    };
    // The table decides which items exist; `items` only supplies bytes.
    bool present[std::size(kKnownItems)] = {};
    for (const MetadataTableEntry& e : table.entries) {
        // A user item is never one of ours, even under a known GUID.
        const KnownItem* known = e.is_user ? nullptr : find_known(e.item_id);
        for (size_t k = 0; known && k < std::size(kKnownItems); ++k)
            if (kKnownItems[k].id == e.item_id) present[k] = true;
        if (!known && e.is_required)
            return unsupported_error("vhdx: unknown required metadata item " +
                                     e.item_id.to_string());
    }
    constexpr size_t kMandatoryItems = 5;  // all but the parent locator
    for (size_t k = 0; k < kMandatoryItems; ++k)
        if (!present[k])
            return corrupt_error(std::string("vhdx: metadata item ") + kKnownItems[k].name +
                                 " is missing");
    auto item = [&](size_t k) -> Result<ByteSpan> {
        const ByteSpan* b = bytes_of(kKnownItems[k].id);
        if (!b)
            return invalid_argument(std::string("vhdx: no bytes supplied for metadata item ") +
                                    kKnownItems[k].name);
        return *b;
    };
    ImageMetadata m;
    ASSIGN_OR_RETURN(ByteSpan fp_bytes, item(0));
    ASSIGN_OR_RETURN(m.file_parameters, parse_file_parameters(fp_bytes));
    ASSIGN_OR_RETURN(ByteSpan size_bytes, item(1));
    ASSIGN_OR_RETURN(m.virtual_disk_size, parse_virtual_disk_size(size_bytes));
    ASSIGN_OR_RETURN(ByteSpan id_bytes, item(2));
    ASSIGN_OR_RETURN(m.virtual_disk_id, parse_virtual_disk_id(id_bytes));
    ASSIGN_OR_RETURN(ByteSpan lss_bytes, item(3));
    ASSIGN_OR_RETURN(m.logical_sector_size, parse_sector_size(lss_bytes, true));
    ASSIGN_OR_RETURN(ByteSpan pss_bytes, item(4));
    ASSIGN_OR_RETURN(m.physical_sector_size, parse_sector_size(pss_bytes, false));
    if (present[5]) {
        ASSIGN_OR_RETURN(ByteSpan locator_bytes, item(5));
        ASSIGN_OR_RETURN(m.parent_locator, parse_parent_locator(locator_bytes));
    }
    TRY(validate_image_metadata(m));
    return m;
}

Result<ImageMetadata> parse_image_metadata_from_region(const MetadataTable& table,
                                                       ByteSpan region_bytes) {
    ASSIGN_OR_RETURN(std::vector<MetadataItemRead> reads, plan_metadata_item_reads(table, 0));
    std::vector<MetadataItemBytes> items;
    for (const MetadataItemRead& r : reads) {
        if (r.file_offset + r.length > region_bytes.size())
            return invalid_argument("vhdx: metadata item " + r.item_id.to_string() + " at " +
                                    hex(r.file_offset) + " lies past the " +
                                    std::to_string(region_bytes.size()) + " bytes supplied");
        items.push_back({r.item_id, region_bytes.subspan(r.file_offset, r.length)});
    }
    return parse_image_metadata(table, items);
}

Result<std::vector<std::byte>> encode_metadata_region(const ImageMetadata& metadata) {
    TRY(validate_image_metadata(metadata));
    std::vector<std::vector<std::byte>> payloads;
    auto add_u32_pair = [&](uint32_t a, uint32_t b) {
        std::vector<std::byte> p(8);
        store_le<uint32_t>(p.data(), a);
        store_le<uint32_t>(p.data() + 4, b);
        payloads.push_back(std::move(p));
    };
    const FileParameters& fp = metadata.file_parameters;
    add_u32_pair(fp.block_size, (fp.leave_block_allocated ? kFileParamLeaveBlockAllocated : 0) |
                                    (fp.has_parent ? kFileParamHasParent : 0));
    payloads.emplace_back(8);
    store_le<uint64_t>(payloads.back().data(), metadata.virtual_disk_size);
    payloads.emplace_back(16);
    std::memcpy(payloads.back().data(), metadata.virtual_disk_id.bytes.data(), 16);
    payloads.emplace_back(4);
    store_le<uint32_t>(payloads.back().data(), metadata.logical_sector_size);
    payloads.emplace_back(4);
    store_le<uint32_t>(payloads.back().data(), metadata.physical_sector_size);
    if (metadata.parent_locator) {
        ASSIGN_OR_RETURN(std::vector<std::byte> locator,
                         encode_parent_locator(*metadata.parent_locator));
        if (locator.size() > kMaxMetadataItemLength)
            return invalid_argument("vhdx: parent locator of " + std::to_string(locator.size()) +
                                    " bytes exceeds limit " +
                                    std::to_string(kMaxMetadataItemLength));
        payloads.push_back(std::move(locator));
    }

    MetadataTable table;
    uint64_t offset = kMetadataTableSize;
    for (size_t k = 0; k < payloads.size(); ++k) {
        table.entries.push_back({kKnownItems[k].id, static_cast<uint32_t>(offset),
                                 static_cast<uint32_t>(payloads[k].size()), false,
                                 kKnownItems[k].is_virtual_disk, true});
        offset += payloads[k].size();
    }
    std::vector<std::byte> region(offset);
    TRY(encode_metadata_table(table, region));
    for (size_t k = 0; k < payloads.size(); ++k)
        std::memcpy(region.data() + table.entries[k].offset, payloads[k].data(),
                    payloads[k].size());
    return region;
}

}  // namespace coblock::vhdx
