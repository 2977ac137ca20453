// VHDX creation layout. Pure. Implements spec vhdx.md §3, §10.4, §13.1, §14.
#include "formats/vhdx/layout.h"

#include <algorithm>

namespace coblock::vhdx {

uint32_t automatic_block_size(uint64_t virtual_disk_size) {
    if (virtual_disk_size > 32 * kTiB) return 64 * kMiB;
    if (virtual_disk_size > 100 * kGiB) return 32 * kMiB;
    if (virtual_disk_size > 1 * kGiB) return 16 * kMiB;
    return 8 * kMiB;
}

Result<ImageLayout> build_image_layout(const CreateOptions& o) {
    const bool differencing = o.type == ImageType::kDifferencing;
    if (differencing != o.parent.has_value())
        return invalid_argument(differencing ? "vhdx: a differencing image needs a parent linkage"
                                             : "vhdx: only a differencing image has a parent");
    if (o.log_size == 0 || o.log_size % kMiB != 0 || o.log_size > kMaxLogSize)
        return invalid_argument("vhdx: log size " + std::to_string(o.log_size) +
                                " is not a non-zero multiple of 1 mib below 4 gib");
    if (o.file_write_guid.is_zero() || o.data_write_guid.is_zero())
        return invalid_argument("vhdx: file and data write guids must be non-zero");
    if (o.sequence_number == UINT64_MAX)
        return invalid_argument("vhdx: header sequence number " +
                                std::to_string(o.sequence_number) + " leaves no room for header 2");
    const uint32_t block_size = o.block_size != 0 ? o.block_size
                                : differencing    ? kDefaultDifferencingBlockSize
                                                  : automatic_block_size(o.virtual_disk_size);

    ImageLayout layout;
    ImageMetadata& m = layout.metadata;
    m.file_parameters = {block_size, o.type == ImageType::kFixed, differencing};
    m.virtual_disk_size = o.virtual_disk_size;
    m.virtual_disk_id = o.virtual_disk_id;
    m.logical_sector_size = o.logical_sector_size;
    m.physical_sector_size = o.physical_sector_size;
    if (differencing) m.parent_locator = make_vhdx_parent_locator(*o.parent);
    // Validates block size, sector sizes and virtual size as a reader would.
    auto metadata_bytes = encode_metadata_region(m);
    if (!metadata_bytes.ok()) return invalid_argument(std::move(metadata_bytes).error().message);
    ASSIGN_OR_RETURN(layout.geometry, compute_bat_geometry(block_size, o.logical_sector_size,
                                                           o.virtual_disk_size, differencing));
    const BatGeometry& g = layout.geometry;

    const uint64_t log_offset = kHeaderSectionSize;
    const uint64_t metadata_offset = log_offset + o.log_size;
    const uint64_t metadata_length = align_up(metadata_bytes->size(), kMiB);
    const uint64_t bat_offset = metadata_offset + metadata_length;
    const uint64_t bat_length = std::max<uint64_t>(align_up(g.table_bytes(), kMiB), kMiB);
    if (bat_length > UINT32_MAX)
        return invalid_argument("vhdx: bat of " + std::to_string(bat_length) +
                                " bytes exceeds the 4 gib region length limit");
    layout.data_offset = bat_offset + bat_length;
    layout.file_size = layout.data_offset;
    if (o.type == ImageType::kFixed) layout.file_size += g.data_blocks * g.block_size;

    layout.regions.bat = {kBatRegionGuid, bat_offset, static_cast<uint32_t>(bat_length), true};
    layout.regions.metadata = {kMetadataRegionGuid, metadata_offset,
                               static_cast<uint32_t>(metadata_length), true};

    auto add = [&](uint64_t offset, size_t size) -> std::vector<std::byte>& {
        layout.writes.push_back({offset, std::vector<std::byte>(size)});
        return layout.writes.back().bytes;
    };
    TRY(encode_file_identifier(FileIdentifier{o.creator}, add(0, kFileIdentifierSize)));

    Header h;
    h.file_write_guid = o.file_write_guid;
    h.data_write_guid = o.data_write_guid;
    h.log_length = static_cast<uint32_t>(o.log_size);
    h.log_offset = log_offset;
    for (int slot = 0; slot < 2; ++slot) {
        h.sequence_number = o.sequence_number + slot;
        TRY(encode_header(h, add(header_slot_offset(slot), kHeaderSize)));
    }
    layout.header = h;

    RegionTable table{{layout.regions.bat, layout.regions.metadata}};
    TRY(encode_region_table(table, add(kRegionTable1Offset, kRegionTableSize)));
    TRY(encode_region_table(table, add(kRegionTable2Offset, kRegionTableSize)));

    layout.writes.push_back({metadata_offset, std::move(*metadata_bytes)});

    const bool fixed = o.type == ImageType::kFixed;
    if (fixed || (o.block_state_zero && o.type == ImageType::kDynamic)) {
        std::vector<std::byte>& bat = add(bat_offset, g.table_bytes());
        for (uint64_t block = 0; block < g.data_blocks; ++block) {
            const BatEntry e =
                fixed ? make_bat_entry(static_cast<uint8_t>(PayloadState::kFullyPresent),
                                       layout.data_offset + block * g.block_size)
                      : make_bat_entry(static_cast<uint8_t>(PayloadState::kZero), 0);
            TRY(write_bat_entry(bat, payload_bat_index(g, block), e));
        }
    }
    return layout;
}

}  // namespace coblock::vhdx
