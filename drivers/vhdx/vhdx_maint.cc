// VHDX maintenance: growing the virtual disk (spec vhdx.md §15.2; a BAT
// region too small for the new size moves to the end of the file, the
// region tables switching to it through the log) and the consistency check
// with its repairs.
#include <algorithm>

#include "block/check.h"
#include "block/io.h"
#include "drivers/vhdx/vhdx_node.h"

namespace coblock {

using namespace vhdx;

Status VhdxNode::co_truncate(uint64_t new_size, bool exact, Prealloc prealloc, bool) {
    const uint64_t lss = metadata_.logical_sector_size;
    if (new_size % lss) {
        if (exact)
            return invalid_argument("vhdx: size " + std::to_string(new_size) +
                                    " is not a multiple of the logical sector size " +
                                    std::to_string(lss));
        new_size = align_up(new_size, lss);
    }
    if (new_size == size()) return {};
    if (!bad_entries_.empty()) return bad_block_error(bad_entries_.front());
    if (new_size < size()) return unsupported_error("vhdx: shrinking an image is not supported");
    if (prealloc != Prealloc::kOff)
        return unsupported_error(std::string("vhdx: unsupported preallocation mode '") +
                                 prealloc_name(prealloc) + "'");
    ASSIGN_OR_RETURN(BatGeometry g,
                     compute_bat_geometry(geometry_.block_size, lss, new_size, has_parent()));
    // A BAT region too small for the new table moves to the end of the file
    // (see co_relocate_bat); its length is a 32-bit field of the region table.
    const bool relocate = !check_bat_region_length(g, regions_.bat.length).ok();
    const uint64_t new_region_length = align_up(g.table_bytes(), kMiB);
    if (relocate && new_region_length > kMaxRegionLength)
        return unsupported_error("vhdx: growing to " + std::to_string(new_size) +
                                 " bytes needs a BAT region of " + hex(new_region_length) +
                                 " bytes; a region table entry holds at most " +
                                 hex(kMaxRegionLength));
    if (metadata_item_size_offset_ == 0) return corrupt_error("vhdx: virtual disk size item lost");

    CoMutexGuard guard(write_lock_);
    TRY(co_begin_write(true));
    Dirty dirty;
    const uint64_t old_count = geometry_.entry_count;
    // Relocation: the new table is built in bat_ (entry indices do not
    // change when the disk grows: new chunks only append entries) and
    // written whole to its new place; the old table is kept for rollback.
    std::vector<std::byte> old_bat;
    uint64_t new_region_offset = 0;
    if (relocate) {
        ASSIGN_OR_RETURN(new_region_offset, co_allocate(new_region_length));
        old_bat = bat_;
        bat_.assign(align_up(g.table_bytes(), kLogSectorSize), std::byte{0});
        std::copy(old_bat.begin(), old_bat.begin() + old_count * kBatEntrySize, bat_.begin());
    }
    const uint64_t new_bytes =
        relocate
            ? bat_.size()
            : std::min<uint64_t>(align_up(g.table_bytes(), kLogSectorSize), regions_.bat.length);
    if (new_bytes > bat_.size()) {
        // Bytes of the region past the old table are reserved: read them so
        // the sectors we log keep them, then clear the new entries.
        const uint64_t old = bat_.size();
        bat_.resize(new_bytes);
        TRY(co_read_file(regions_.bat.file_offset + old, bat_.data() + old, new_bytes - old));
    }
    for (uint64_t i = old_count; i < g.entry_count; ++i)
        if (load_le<uint64_t>(bat_.data() + i * kBatEntrySize) != 0)
            set_entry(i, BatEntry{}, dirty);

    // The old last block's bytes past the old end become visible: make
    // them zeros (a block may hold anything there).
    const uint64_t bs = geometry_.block_size;
    const uint64_t old_size = size();
    if (old_size % bs) {
        const uint64_t last = old_size / bs;
        const BatEntry e = bat_entry(payload_bat_index(geometry_, last));
        if (e.state == static_cast<uint8_t>(PayloadState::kFullyPresent) ||
            e.state == static_cast<uint8_t>(PayloadState::kPartiallyPresent)) {
            const uint64_t tail = e.file_offset() + old_size % bs;
            const uint64_t block_end = e.file_offset() + bs;
            const uint64_t fsize = file_->node()->size();
            if (block_end > fsize)  // QEMU's fixed images end inside their last block
                TRY(co_child_truncate(file_, block_end, true, Prealloc::kOff, false));
            else if (tail < block_end)
                TRY(co_child_pwrite_zeroes(file_, tail, block_end - tail));
        }
    }
    // Fixed images keep every block allocated (spec note <6>).
    if (metadata_.file_parameters.leave_block_allocated) {
        for (uint64_t b = geometry_.data_blocks; b < g.data_blocks; ++b) {
            ASSIGN_OR_RETURN(uint64_t offset, co_allocate(bs));
            set_entry(payload_bat_index(g, b),
                      make_bat_entry(static_cast<uint8_t>(PayloadState::kFullyPresent), offset),
                      dirty);
        }
    }

    // The virtual disk size item goes through the log with the BAT.
    const uint64_t sector = align_down(metadata_item_size_offset_, kLogSectorSize);
    SectorUpdate size_update;
    size_update.file_offset = sector;
    size_update.data.resize(kLogSectorSize);
    TRY(co_read_file(sector, size_update.data.data(), kLogSectorSize));
    if (metadata_item_size_offset_ + 8 > sector + kLogSectorSize)
        return unsupported_error("vhdx: the virtual disk size item straddles a 4 KiB sector");
    store_le<uint64_t>(size_update.data.data() + (metadata_item_size_offset_ - sector), new_size);

    std::vector<SectorUpdate> updates;
    Status status;
    if (relocate) {
        // Not yet referenced: written directly. The region tables that
        // point at it go through the log with the size, in one entry, so
        // a crash leaves either the old table and size or the new ones.
        status = co_child_pwrite(file_, new_region_offset, bat_.data(), bat_.size());
        if (status.ok())
            status = co_region_table_updates(new_region_offset, new_region_length, updates);
    } else {
        for (uint64_t s : dirty.bat_sectors) {
            SectorUpdate u;
            u.file_offset = regions_.bat.file_offset + s * kLogSectorSize;
            u.data.assign(bat_.begin() + s * kLogSectorSize,
                          bat_.begin() + (s + 1) * kLogSectorSize);
            updates.push_back(std::move(u));
        }
    }
    updates.push_back(std::move(size_update));
    if (status.ok()) status = co_child_flush(file_);
    if (status.ok()) status = co_log_and_apply(updates);
    if (!status.ok()) {
        if (relocate) {
            bat_ = std::move(old_bat);
        } else {
            for (auto it = dirty.old_entries.rbegin(); it != dirty.old_entries.rend(); ++it)
                store_le<uint64_t>(bat_.data() + it->first * kBatEntrySize, it->second);
        }
        return status;
    }
    if (relocate) {
        regions_.bat.file_offset = new_region_offset;
        regions_.bat.length = static_cast<uint32_t>(new_region_length);
        extents_ = image_extents(headers_.current, regions_);
    }
    geometry_ = g;
    metadata_.virtual_disk_size = new_size;
    set_size(new_size);
    return {};
}

// Both copies of the region table with the BAT entry moved, as 4 KiB
// sector updates for the log (only the sectors that change: the first,
// which holds the entries and the checksum of the whole table).
Status VhdxNode::co_region_table_updates(uint64_t bat_offset, uint64_t bat_length,
                                         std::vector<SectorUpdate>& updates) {
    std::vector<std::byte> tables(2 * kRegionTableSize);
    TRY(co_read_file(kRegionTable1Offset, tables.data(), tables.size()));
    ASSIGN_OR_RETURN(RegionTableChoice choice,
                     select_region_table(ByteSpan(tables).first(kRegionTableSize),
                                         ByteSpan(tables).subspan(kRegionTableSize)));
    bool found = false;
    for (RegionTableEntry& e : choice.table.entries) {
        if (e.guid != kBatRegionGuid) continue;
        e.file_offset = bat_offset;
        e.length = static_cast<uint32_t>(bat_length);
        found = true;
    }
    if (!found) return corrupt_error("vhdx: region table lost its BAT entry");
    std::vector<std::byte> encoded(kRegionTableSize);
    TRY(encode_region_table(choice.table, encoded));
    for (int copy = 0; copy < 2; ++copy) {
        const uint64_t base = copy == 0 ? kRegionTable1Offset : kRegionTable2Offset;
        for (uint64_t sector = 0; sector < kRegionTableSize / kLogSectorSize; ++sector) {
            const auto mine = encoded.begin() + sector * kLogSectorSize;
            const auto on_file = tables.begin() + copy * kRegionTableSize + sector * kLogSectorSize;
            if (std::equal(mine, mine + kLogSectorSize, on_file)) continue;
            SectorUpdate u;
            u.file_offset = base + sector * kLogSectorSize;
            u.data.assign(mine, mine + kLogSectorSize);
            updates.push_back(std::move(u));
        }
    }
    return {};
}

std::vector<uint64_t> VhdxNode::scan_bad_entries() const {
    struct Allocation {
        uint64_t start, end, index;
    };
    std::vector<uint64_t> bad;
    std::vector<Allocation> allocations;
    const uint64_t fsize = file_size();
    for (uint64_t i = 0; i < geometry_.entry_count; ++i) {
        const BatEntry e = bat_entry(i);
        if (!check_bat_entry(geometry_, i, e).ok()) {
            bad.push_back(i);
            continue;
        }
        uint64_t length = 0, needed = 0;
        if (is_sector_bitmap_index(geometry_, i)) {
            if (e.state != kSectorBitmapPresent) continue;
            length = needed = kSectorBitmapBlockSize;
        } else {
            if (e.state != static_cast<uint8_t>(PayloadState::kFullyPresent) &&
                e.state != static_cast<uint8_t>(PayloadState::kPartiallyPresent))
                continue;
            const uint64_t block = block_of_bat_index(geometry_, i);
            if (block >= geometry_.data_blocks) {
                bad.push_back(i);  // a differencing table's padding entry
                continue;
            }
            length = geometry_.block_size;
            // QEMU's fixed images end with a partial block.
            needed = std::min(length, geometry_.virtual_disk_size - block * length);
            if (e.state == static_cast<uint8_t>(PayloadState::kPartiallyPresent) &&
                bat_entry(sector_bitmap_bat_index(geometry_, block / geometry_.chunk_ratio))
                        .state != kSectorBitmapPresent) {
                bad.push_back(i);
                continue;
            }
        }
        const uint64_t offset = e.file_offset();
        if (offset < kHeaderSectionSize || offset + needed > fsize) {
            bad.push_back(i);
            continue;
        }
        bool hits_fixed = false;
        for (const Extent& x : extents_)
            if (x.length && offset < x.offset + x.length && x.offset < offset + length)
                hits_fixed = true;
        if (hits_fixed) {
            bad.push_back(i);
            continue;
        }
        allocations.push_back({offset, offset + length, i});
    }
    std::sort(allocations.begin(), allocations.end(),
              [](const Allocation& a, const Allocation& b) { return a.start < b.start; });
    uint64_t end = 0;
    for (const Allocation& a : allocations) {
        if (a.start < end)
            bad.push_back(a.index);  // overlaps an earlier block
        else
            end = a.end;
    }
    std::sort(bad.begin(), bad.end());
    return bad;
}

bool VhdxNode::is_bad(uint64_t index) const {
    return std::binary_search(bad_entries_.begin(), bad_entries_.end(), index);
}

Error VhdxNode::bad_block_error(uint64_t index) const {
    const BatEntry e = bat_entry(index);
    return Error{ErrorKind::kCorrupt, EIO,
                 "vhdx: BAT entry " + std::to_string(index) + " (state " + std::to_string(e.state) +
                     ", offset " + hex(e.file_offset()) +
                     ") points outside the file or at another object; run check -r all",
                 std::nullopt};
}

Status VhdxNode::co_check(CheckResult& result, CheckFix fix) {
    result.image_end_offset = static_cast<int64_t>(file_size());
    result.total_clusters = static_cast<int64_t>(geometry_.data_blocks);
    uint64_t expected_next = 0;
    for (uint64_t block = 0; block < geometry_.data_blocks; ++block) {
        const BatEntry e = bat_entry(payload_bat_index(geometry_, block));
        if (e.state != static_cast<uint8_t>(PayloadState::kFullyPresent) &&
            e.state != static_cast<uint8_t>(PayloadState::kPartiallyPresent))
            continue;
        ++result.allocated_clusters;
        if (expected_next && e.file_offset() != expected_next) ++result.fragmented_clusters;
        expected_next = e.file_offset() + geometry_.block_size;
    }
    const std::vector<uint64_t> bad = scan_bad_entries();
    if (!bad.empty() && fix == CheckFix::kAll && !read_only() && !log_pending_read_only_) {
        // Forget the bad blocks: their entries become NOT_PRESENT (with the
        // partially present blocks that relied on a bad sector bitmap),
        // through the log like every metadata change.
        CoMutexGuard guard(write_lock_);
        TRY(co_begin_write(true));
        Dirty dirty;
        for (uint64_t index : bad) {
            set_entry(index, BatEntry{}, dirty);
            if (!is_sector_bitmap_index(geometry_, index)) continue;
            const uint64_t chunk = chunk_of_bat_index(geometry_, index);
            for (uint64_t b = chunk * geometry_.chunk_ratio;
                 b < std::min(geometry_.data_blocks, (chunk + 1) * geometry_.chunk_ratio); ++b) {
                const uint64_t i = payload_bat_index(geometry_, b);
                if (bat_entry(i).state == static_cast<uint8_t>(PayloadState::kPartiallyPresent))
                    set_entry(i, BatEntry{}, dirty);
            }
            bitmaps_.erase(chunk);
        }
        const std::vector<uint64_t> saved = bad_entries_;
        bad_entries_.clear();
        Status status = co_commit(dirty);
        if (!status.ok()) {
            for (auto it = dirty.old_entries.rbegin(); it != dirty.old_entries.rend(); ++it)
                store_le<uint64_t>(bat_.data() + it->first * kBatEntrySize, it->second);
            bad_entries_ = saved;
            return status;
        }
        result.corruptions_fixed += static_cast<int64_t>(bad.size());
    } else {
        result.corruptions += static_cast<int64_t>(bad.size());
    }
    if (log_pending_read_only_) {
        // Served from memory; the file still needs the replay (-r all, or
        // any read-write open).
        ++result.corruptions;
    } else if (log_replayed_ && fix != CheckFix::kNone) {
        // Replayed into the file when the image was opened for repair.
        ++result.corruptions_fixed;
    }
    return {};
}

}  // namespace coblock
