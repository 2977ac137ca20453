// VHDX block allocation table. Pure. Implements spec vhdx.md §7.3, §8, §9.1.
#include "formats/vhdx/bat.h"

#include <algorithm>
#include <string>
#include <vector>

#include "formats/vhdx/metadata.h"

namespace coblock::vhdx {
namespace {

constexpr uint64_t kStateMask = 0x7;
constexpr int kReservedShift = 3;
constexpr uint64_t kReservedMask = 0x1FFFF;  // 17 bits
constexpr int kFileOffsetShift = 20;

std::string entry_name(const BatGeometry& g, uint64_t bat_index) {
    std::string name = "vhdx: bat entry " + std::to_string(bat_index);
    if (is_sector_bitmap_index(g, bat_index))
        return name + " (sector bitmap of chunk " +
               std::to_string(chunk_of_bat_index(g, bat_index)) + ")";
    return name + " (payload block " + std::to_string(block_of_bat_index(g, bat_index)) + ")";
}

}  // namespace

BatEntry decode_bat_entry(uint64_t raw) {
    return BatEntry{static_cast<uint8_t>(raw & kStateMask),
                    static_cast<uint32_t>((raw >> kReservedShift) & kReservedMask),
                    raw >> kFileOffsetShift};
}

uint64_t encode_bat_entry(const BatEntry& e) {
    return (uint64_t{e.state} & kStateMask) |
           ((uint64_t{e.reserved} & kReservedMask) << kReservedShift) |
           (e.file_offset_mb << kFileOffsetShift);
}

BatEntry make_bat_entry(uint8_t state, uint64_t file_offset) {
    return BatEntry{static_cast<uint8_t>(state & kStateMask), 0, file_offset / kMiB};
}

Result<BatGeometry> compute_bat_geometry(uint64_t block_size, uint64_t logical_sector_size,
                                         uint64_t virtual_disk_size, bool has_parent) {
    if (!is_power_of_two(block_size) || block_size < kMinBlockSize || block_size > kMaxBlockSize)
        return corrupt_error("vhdx: block size " + std::to_string(block_size) +
                             " is not a power of two between 1 mib and 256 mib");
    if (logical_sector_size != 512 && logical_sector_size != 4096)
        return corrupt_error("vhdx: logical sector size " + std::to_string(logical_sector_size) +
                             " is not 512 or 4096");
    if (virtual_disk_size > kMaxVirtualDiskSize || virtual_disk_size % logical_sector_size != 0)
        return corrupt_error("vhdx: virtual disk size " + std::to_string(virtual_disk_size) +
                             " is not a multiple of " + std::to_string(logical_sector_size) +
                             " up to " + std::to_string(kMaxVirtualDiskSize));
    BatGeometry g;
    g.block_size = block_size;
    g.logical_sector_size = logical_sector_size;
    g.virtual_disk_size = virtual_disk_size;
    g.has_parent = has_parent;
    // Bounded above: chunk_size <= 2^35 and block_size >= 2^20, so no overflow.
    g.chunk_size = kSectorsPerChunk * logical_sector_size;
    g.chunk_ratio = g.chunk_size / block_size;
    g.data_blocks = div_round_up(virtual_disk_size, block_size);
    g.bitmap_blocks = div_round_up(g.data_blocks, g.chunk_ratio);
    if (has_parent)
        g.entry_count = g.bitmap_blocks * (g.chunk_ratio + 1);
    else if (g.data_blocks != 0)  // QEMU underflows here for size 0; we give 0 entries
        g.entry_count = g.data_blocks + (g.data_blocks - 1) / g.chunk_ratio;
    return g;
}

uint64_t payload_bat_index(const BatGeometry& g, uint64_t block) {
    return block + block / g.chunk_ratio;
}

uint64_t sector_bitmap_bat_index(const BatGeometry& g, uint64_t chunk) {
    return chunk * (g.chunk_ratio + 1) + g.chunk_ratio;
}

bool is_sector_bitmap_index(const BatGeometry& g, uint64_t bat_index) {
    return (bat_index + 1) % (g.chunk_ratio + 1) == 0;
}

uint64_t block_of_bat_index(const BatGeometry& g, uint64_t bat_index) {
    return bat_index - bat_index / (g.chunk_ratio + 1);
}

uint64_t chunk_of_bat_index(const BatGeometry& g, uint64_t bat_index) {
    return bat_index / (g.chunk_ratio + 1);
}

Result<VirtualLocation> locate_virtual_offset(const BatGeometry& g, uint64_t virtual_offset) {
    if (virtual_offset >= g.virtual_disk_size)
        return invalid_argument("vhdx: virtual offset " + std::to_string(virtual_offset) +
                                " is not below the virtual disk size " +
                                std::to_string(g.virtual_disk_size));
    VirtualLocation loc;
    loc.block = virtual_offset / g.block_size;
    loc.offset_in_block = virtual_offset % g.block_size;
    loc.bat_index = payload_bat_index(g, loc.block);
    loc.chunk = loc.block / g.chunk_ratio;
    loc.bitmap_bat_index = sector_bitmap_bat_index(g, loc.chunk);
    loc.sector_in_chunk = virtual_offset / g.logical_sector_size - loc.chunk * kSectorsPerChunk;
    loc.bytes_left_in_block =
        std::min(g.block_size - loc.offset_in_block, g.virtual_disk_size - virtual_offset);
    return loc;
}

Result<BatEntry> read_bat_entry(ByteSpan table, uint64_t bat_index) {
    if (bat_index >= table.size() / kBatEntrySize)
        return invalid_argument("vhdx: bat entry " + std::to_string(bat_index) + " lies past the " +
                                std::to_string(table.size()) + " bytes of bat supplied");
    return decode_bat_entry(load_le<uint64_t>(table.data() + bat_index * kBatEntrySize));
}

Status write_bat_entry(MutableByteSpan table, uint64_t bat_index, const BatEntry& entry) {
    if (bat_index >= table.size() / kBatEntrySize)
        return invalid_argument("vhdx: bat entry " + std::to_string(bat_index) + " lies past the " +
                                std::to_string(table.size()) + " bytes of bat supplied");
    store_le<uint64_t>(table.data() + bat_index * kBatEntrySize, encode_bat_entry(entry));
    return ok_status();
}

Status check_bat_region_length(const BatGeometry& g, uint64_t region_length) {
    if (region_length < g.table_bytes())
        return corrupt_error("vhdx: bat region length " + std::to_string(region_length) +
                             " is less than the " + std::to_string(g.table_bytes()) + " bytes of " +
                             std::to_string(g.entry_count) + " entries");
    return ok_status();
}

Status check_bat_entry(const BatGeometry& g, uint64_t bat_index, const BatEntry& e) {
    if (is_sector_bitmap_index(g, bat_index)) {
        if (!g.has_parent) return ok_status();  // unused; VirtualBox saw garbage here in the wild
        if (e.state != kSectorBitmapNotPresent && e.state != kSectorBitmapPresent)
            return corrupt_error(entry_name(g, bat_index) + " has reserved sector bitmap state " +
                                 std::to_string(e.state));
        if (e.state == kSectorBitmapPresent && e.file_offset() < kHeaderSectionSize)
            return corrupt_error(entry_name(g, bat_index) + " file offset " + hex(e.file_offset()) +
                                 " lies in the header section");
        return ok_status();
    }
    const auto state = static_cast<PayloadState>(e.state);
    if (state == PayloadState::kReserved4 ||
        (state == PayloadState::kPartiallyPresent && !g.has_parent))
        return corrupt_error(entry_name(g, bat_index) + " has invalid payload state " +
                             std::to_string(e.state));
    if ((state == PayloadState::kFullyPresent || state == PayloadState::kPartiallyPresent) &&
        e.file_offset() < kHeaderSectionSize)
        return corrupt_error(entry_name(g, bat_index) + " file offset " + hex(e.file_offset()) +
                             " lies in the header section");
    return ok_status();
}

Status check_bat(const BatGeometry& g, ByteSpan table, uint64_t file_size,
                 std::span<const Extent> fixed_extents) {
    if (table.size() < g.table_bytes())
        return invalid_argument("vhdx: bat of " + std::to_string(table.size()) +
                                " bytes supplied, " + std::to_string(g.table_bytes()) + " needed");
    // An allocated object; bat_index UINT64_MAX marks a fixed extent.
    struct Allocation {
        uint64_t offset;
        uint64_t length;
        uint64_t bat_index;
        size_t extent;
    };
    std::vector<Allocation> allocs;
    for (size_t i = 0; i < fixed_extents.size(); ++i) {
        const Extent& e = fixed_extents[i];
        uint64_t end;
        if (!checked_add(e.offset, e.length, &end))
            return corrupt_error("vhdx: " + e.name + " at " + hex(e.offset) + " overflows");
        if (e.length != 0) allocs.push_back({e.offset, e.length, UINT64_MAX, i});
    }

    for (uint64_t i = 0; i < g.entry_count; ++i) {
        const BatEntry e = decode_bat_entry(load_le<uint64_t>(table.data() + i * kBatEntrySize));
        TRY(check_bat_entry(g, i, e));
        uint64_t length = 0;
        uint64_t needed = 0;  // bytes that must exist in the file
        if (is_sector_bitmap_index(g, i)) {
            if (e.state != kSectorBitmapPresent) continue;
            length = needed = kSectorBitmapBlockSize;
        } else {
            const auto state = static_cast<PayloadState>(e.state);
            if (state == PayloadState::kPartiallyPresent) {
                const uint64_t chunk = chunk_of_bat_index(g, i);
                const uint64_t sb_index = sector_bitmap_bat_index(g, chunk);
                const uint8_t sb_state =
                    sb_index < g.entry_count
                        ? static_cast<uint8_t>(
                              load_le<uint64_t>(table.data() + sb_index * kBatEntrySize) &
                              kStateMask)
                        : kSectorBitmapNotPresent;
                if (sb_state != kSectorBitmapPresent)
                    return corrupt_error(entry_name(g, i) +
                                         " is partially present but the sector bitmap of chunk " +
                                         std::to_string(chunk) + " is not present");
            } else if (state != PayloadState::kFullyPresent) {
                continue;
            }
            const uint64_t block = block_of_bat_index(g, i);
            length = g.block_size;
            // block < data_blocks here, so the subtraction cannot underflow.
            needed = std::min(g.block_size, g.virtual_disk_size - block * g.block_size);
        }
        uint64_t end;
        if (!checked_add(e.file_offset(), length, &end) || e.file_offset() + needed > file_size)
            return corrupt_error(entry_name(g, i) + " file offset " + hex(e.file_offset()) +
                                 " points past the end of the file at " + hex(file_size));
        allocs.push_back({e.file_offset(), length, i, 0});
    }

    // Ties put fixed extents first so messages blame the block, not the region.
    std::sort(allocs.begin(), allocs.end(), [](const Allocation& a, const Allocation& b) {
        if (a.offset != b.offset) return a.offset < b.offset;
        const bool a_fixed = a.bat_index == UINT64_MAX;
        const bool b_fixed = b.bat_index == UINT64_MAX;
        if (a_fixed != b_fixed) return a_fixed;
        return a.bat_index < b.bat_index || (a.bat_index == b.bat_index && a.extent < b.extent);
    });
    auto describe = [&](const Allocation& a) {
        if (a.bat_index == UINT64_MAX) return fixed_extents[a.extent].name + " at " + hex(a.offset);
        return entry_name(g, a.bat_index).substr(6) + " block at " +
               hex(a.offset);  // drop "vhdx: "
    };
    size_t furthest = 0;
    for (size_t k = 1; k < allocs.size(); ++k) {
        const Allocation& far = allocs[furthest];
        if (allocs[k].offset < far.offset + far.length)
            return corrupt_error("vhdx: " + describe(allocs[k]) + " overlaps " + describe(far));
        if (allocs[k].offset + allocs[k].length > far.offset + far.length) furthest = k;
    }
    return ok_status();
}

}  // namespace coblock::vhdx
