// VHDX reads, writes, zero writes, discards and block status, and the
// write-ahead machinery: header updates with the session GUIDs (spec §5.4),
// block allocation at 1 MiB alignment, and BAT/sector-bitmap updates
// written through the log (entry durable, then applied, then durable, then
// the log GUID cleared; spec §11.6-§11.7), so a crash at any point is
// recoverable by replay.
#include <algorithm>
#include <cstring>

#include "block/io.h"
#include "drivers/vhdx/vhdx_node.h"

namespace coblock {

using namespace vhdx;

namespace {
// Cached sector bitmap chunks (1 MiB each).
constexpr size_t kMaxCachedBitmaps = 16;
}  // namespace

// ---- File access -------------------------------------------------------------

uint64_t VhdxNode::file_size() const {
    return std::max(file_->node()->size(), overlay_file_size_);
}

Status VhdxNode::co_read_file(uint64_t offset, void* buf, size_t bytes) {
    if (bytes == 0) return {};  // buf may be null then (an empty table's data())
    auto* out = static_cast<std::byte*>(buf);
    const uint64_t real = file_->node()->size();
    const uint64_t n = offset < real ? std::min<uint64_t>(bytes, real - offset) : 0;
    if (n) TRY(co_child_pread(file_, offset, out, n));
    std::memset(out + n, 0, bytes - n);
    // The replayed log sequence, in order (later writes win).
    for (const ReplayWrite& w : overlay_) {
        const uint64_t len = w.is_zero() ? w.zero_length : w.data.size();
        const uint64_t start = std::max(offset, w.file_offset);
        const uint64_t end = std::min(offset + bytes, w.file_offset + len);
        if (start >= end) continue;
        if (w.is_zero())
            std::memset(out + (start - offset), 0, end - start);
        else
            std::memcpy(out + (start - offset), w.data.data() + (start - w.file_offset),
                        end - start);
    }
    return {};
}

Status VhdxNode::co_read_file_v(uint64_t offset, uint64_t bytes, IoVector& qiov) {
    if (overlay_.empty() && offset + bytes <= file_->node()->size())
        return co_child_preadv(file_, offset, bytes, qiov);
    std::vector<std::byte> tmp(bytes);
    TRY(co_read_file(offset, tmp.data(), bytes));
    qiov.copy_from(0, tmp.data(), bytes);
    return {};
}

Status VhdxNode::co_read_parent(uint64_t offset, uint64_t bytes, IoVector& qiov) {
    uint64_t n = 0;
    if (parent_) {
        const uint64_t psize = parent_->node()->size();
        n = offset < psize ? std::min(bytes, psize - offset) : 0;
        if (n) {
            IoVector part = qiov.slice(0, n);
            TRY(co_child_preadv(parent_, offset, n, part));
        }
    }
    // No parent opened (no_backing), or reads past the parent's end: zeros.
    if (n < bytes) qiov.fill(n, 0, bytes - n);
    return {};
}

Result<VhdxNode::Bitmap> VhdxNode::co_bitmap(uint64_t chunk) {
    auto it = bitmaps_.find(chunk);
    if (it != bitmaps_.end()) return it->second;
    const uint64_t index = sector_bitmap_bat_index(geometry_, chunk);
    const BatEntry e = bat_entry(index);
    auto bitmap = std::make_shared<std::vector<std::byte>>(kSectorBitmapBlockSize);
    if (e.state == kSectorBitmapPresent)
        TRY(co_read_file(e.file_offset(), bitmap->data(), bitmap->size()));
    else if (e.state != kSectorBitmapNotPresent)
        return corrupt_error("vhdx: sector bitmap entry " + std::to_string(index) +
                             " has reserved state " + std::to_string(e.state));
    // Another request may have loaded it while we read.
    it = bitmaps_.find(chunk);
    if (it != bitmaps_.end()) return it->second;
    // Bound the cache (1 MiB per chunk): drop another chunk's copy; users
    // keep theirs alive through the shared pointer.
    while (bitmaps_.size() >= kMaxCachedBitmaps)
        bitmaps_.erase(bitmaps_.begin());
    bitmaps_.emplace(chunk, bitmap);
    return bitmap;
}

bool VhdxNode::bitmap_bit(const std::vector<std::byte>& bitmap, uint64_t sector) const {
    return (static_cast<uint8_t>(bitmap[sector / 8]) >> (sector % 8)) & 1;
}

bool VhdxNode::reads_as_zero_state(uint8_t state) const {
    switch (static_cast<PayloadState>(state)) {
        case PayloadState::kNotPresent:
            return !has_parent();
        case PayloadState::kUndefined:
        case PayloadState::kZero:
        case PayloadState::kUnmapped:
        case PayloadState::kUnmappedV095:
            return true;
        default:
            return false;
    }
}

// ---- Reads -------------------------------------------------------------------

Status VhdxNode::co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) {
    const uint64_t bs = geometry_.block_size;
    const uint64_t lss = metadata_.logical_sector_size;
    uint64_t done = 0;
    while (done < bytes) {
        const uint64_t pos = offset + done;
        const uint64_t block = pos / bs;
        const uint64_t in_block = pos % bs;
        const uint64_t len = std::min(bytes - done, bs - in_block);
        IoVector piece = qiov.slice(done, len);
        const uint64_t index = payload_bat_index(geometry_, block);
        const BatEntry e = bat_entry(index);
        if (!bad_entries_.empty()) {
            if (is_bad(index)) return bad_block_error(index);
            const uint64_t sb = sector_bitmap_bat_index(geometry_, block / geometry_.chunk_ratio);
            if (e.state == static_cast<uint8_t>(PayloadState::kPartiallyPresent) && is_bad(sb))
                return bad_block_error(sb);
        }
        switch (static_cast<PayloadState>(e.state)) {
            case PayloadState::kFullyPresent:
                TRY(co_read_file_v(e.file_offset() + in_block, len, piece));
                break;
            case PayloadState::kPartiallyPresent: {
                ASSIGN_OR_RETURN(Bitmap bitmap, co_bitmap(pos / geometry_.chunk_size));
                uint64_t s = 0;
                while (s < len) {
                    const uint64_t sector = ((pos + s) / lss) % kSectorsPerChunk;
                    const bool here = bitmap_bit(*bitmap, sector);
                    uint64_t run = lss;
                    while (s + run < len && bitmap_bit(*bitmap, sector + run / lss) == here)
                        run += lss;
                    IoVector part = piece.slice(s, run);
                    if (here)
                        TRY(co_read_file_v(e.file_offset() + in_block + s, run, part));
                    else
                        TRY(co_read_parent(pos + s, run, part));
                    s += run;
                }
                break;
            }
            case PayloadState::kNotPresent:
                if (has_parent()) {
                    TRY(co_read_parent(pos, len, piece));
                    break;
                }
                [[fallthrough]];
            case PayloadState::kUndefined:
            case PayloadState::kZero:
            case PayloadState::kUnmapped:
            case PayloadState::kUnmappedV095:
                piece.fill(0);
                break;
            default:
                return Error{ErrorKind::kCorrupt, EIO,
                             "vhdx: payload block " + std::to_string(block) +
                                 " has reserved state " + std::to_string(e.state),
                             std::nullopt};
        }
        done += len;
    }
    return {};
}

// ---- Block status ----------------------------------------------------------------

Result<BlockStatus> VhdxNode::co_block_status(uint64_t offset, uint64_t bytes, bool) {
    const uint64_t bs = geometry_.block_size;
    const uint64_t lss = metadata_.logical_sector_size;
    const uint64_t block = offset / bs;
    const uint64_t in_block = offset % bs;
    const uint64_t len = std::min(bytes, bs - in_block);
    const uint64_t index = payload_bat_index(geometry_, block);
    if (!bad_entries_.empty() && is_bad(index)) return bad_block_error(index);
    const BatEntry e = bat_entry(index);
    BlockStatus st;
    st.bytes = len;
    switch (static_cast<PayloadState>(e.state)) {
        case PayloadState::kFullyPresent:
            st.flags = kStatusData | kStatusAllocated | kStatusOffsetValid;
            st.offset = e.file_offset() + in_block;
            st.file = file_->node();
            break;
        case PayloadState::kPartiallyPresent: {
            ASSIGN_OR_RETURN(Bitmap bitmap, co_bitmap(offset / geometry_.chunk_size));
            const uint64_t sector = (offset / lss) % kSectorsPerChunk;
            const bool here = bitmap_bit(*bitmap, sector);
            uint64_t run = lss;
            while (run < len && bitmap_bit(*bitmap, sector + run / lss) == here)
                run += lss;
            st.bytes = run;
            if (here) {
                st.flags = kStatusData | kStatusAllocated | kStatusOffsetValid;
                st.offset = e.file_offset() + in_block;
                st.file = file_->node();
            }
            break;
        }
        case PayloadState::kNotPresent:
            // Unallocated: the chain walk goes to the parent, or reads zeros.
            if (!metadata_.file_parameters.leave_block_allocated) break;
            [[fallthrough]];
        default:
            // A fixed image keeps all its space allocated whatever the
            // state says (qemu-img creates them with ZERO entries): report
            // data, as QEMU does, so copies stay fully allocated.
            st.flags = metadata_.file_parameters.leave_block_allocated
                           ? kStatusData | kStatusAllocated
                           : kStatusZero | kStatusAllocated;
            break;
    }
    if (offset + st.bytes >= size()) st.flags |= kStatusEof;
    return st;
}

// ---- Headers and the log ------------------------------------------------------------

Status VhdxNode::co_update_headers(const Header& fields) {
    ASSIGN_OR_RETURN(auto writes, plan_header_update(headers_, fields));
    for (const HeaderWrite& w : writes) {
        TRY(co_child_pwrite(file_, w.file_offset, w.bytes.data(), w.bytes.size()));
        TRY(co_child_flush(file_));
    }
    headers_.other = writes[0].header;
    headers_.other_valid = true;
    headers_.current = writes[1].header;
    headers_.current_slot = writes[1].file_offset == header_slot_offset(0) ? 0 : 1;
    return {};
}

Status VhdxNode::co_begin_write(bool user_visible) {
    if (file_guid_done_ && (data_guid_done_ || !user_visible)) return {};
    Header fields = headers_.current;
    fields.file_write_guid = session_guid_;
    if (user_visible && !data_guid_done_) fields.data_write_guid = random_vhdx_guid();
    TRY(co_update_headers(fields));
    file_guid_done_ = true;
    data_guid_done_ = data_guid_done_ || user_visible;
    return {};
}

Status VhdxNode::co_log_and_apply(const std::vector<SectorUpdate>& updates) {
    const uint64_t log_length = headers_.current.log_length;
    const uint64_t log_offset = headers_.current.log_offset;
    size_t next = 0;
    while (next < updates.size()) {
        // As many updates as fit in one entry that fills at most the log.
        // Updates that need more entries are applied in order, and a crash
        // between entries keeps a prefix. Callers order updates so that
        // every prefix is consistent: sector bitmaps before the BAT entries
        // that make blocks partially present (co_commit), and a grow's new
        // BAT entries (past the old entry count, unread at the old size)
        // before the size item. Only a request larger than the log splits
        // (at the default 1 MiB log, about 250 sectors of metadata), and
        // an unacknowledged request may be half applied after a crash.
        size_t count = 0;
        while (next + count < updates.size() &&
               (log_descriptor_sectors(count + 1) + count + 1) * kLogSectorSize <= log_length)
            ++count;
        if (count == 0)
            return make_error(ErrorKind::kNoSpace, "vhdx: log of " + std::to_string(log_length) +
                                                       " bytes is too small for one update");
        std::span<const SectorUpdate> batch(updates.data() + next, count);
        if (!log_open_) {
            // A fresh log GUID makes every older entry in the ring invalid.
            Header fields = headers_.current;
            fields.log_guid = random_vhdx_guid();
            TRY(co_update_headers(fields));
            log_open_ = true;
            log_position_ = 0;
        }
        const uint64_t fsize = file_->node()->size();
        LogEntryParams params;
        params.log_guid = headers_.current.log_guid;
        params.sequence_number = log_sequence_++;
        // Every earlier entry is applied: each entry is its own sequence,
        // and the newest (highest sequence number) is the one replayed.
        params.tail = static_cast<uint32_t>(log_position_);
        params.flushed_file_offset = align_down(fsize, kMiB);
        params.last_file_offset = align_up(fsize, kMiB);
        ASSIGN_OR_RETURN(std::vector<std::byte> entry, build_log_entry(params, batch));
        ASSIGN_OR_RETURN(std::vector<LogWrite> log_writes,
                         place_log_entry(log_offset, log_length, log_position_, ByteSpan(entry)));
        for (const LogWrite& w : log_writes)
            TRY(co_child_pwrite(file_, w.file_offset, w.bytes.data(), w.bytes.size()));
        TRY(co_child_flush(file_));
        log_position_ = (log_position_ + entry.size()) % log_length;
        for (const SectorUpdate& u : batch)
            TRY(co_child_pwrite(file_, u.file_offset, u.data.data(), u.data.size()));
        TRY(co_child_flush(file_));
        next += count;
    }
    return {};
}

// Spec §11.7: every entry is applied, so the log is emptied by clearing the
// GUID. Done at flush and close, the boundaries other programs (QEMU
// refuses read-only opens of a file with a live log) may observe.
Status VhdxNode::co_empty_log() {
    if (!log_open_) return {};
    Header fields = headers_.current;
    fields.log_guid = Guid{};
    TRY(co_update_headers(fields));
    log_open_ = false;
    return {};
}

Status VhdxNode::co_flush() {
    CoMutexGuard guard(write_lock_);
    return co_empty_log();
}

Status VhdxNode::co_close() {
    CoMutexGuard guard(write_lock_);
    return co_empty_log();
}

// ---- Allocation and metadata updates -------------------------------------------------

Result<uint64_t> VhdxNode::co_allocate(uint64_t bytes) {
    const uint64_t offset = align_up(file_->node()->size(), kObjectAlignment);
    if ((offset + bytes) / kMiB > kMaxFileOffsetMb)
        return make_error(ErrorKind::kNoSpace,
                          "vhdx: file offset " + hex(offset) + " does not fit a BAT entry");
    // A regular file's extension reads as zeros: the parts of the block the
    // write does not cover need no explicit zeroing.
    TRY(co_child_truncate(file_, offset + bytes, /*exact=*/true, Prealloc::kOff, false));
    return offset;
}

void VhdxNode::set_entry(uint64_t index, const BatEntry& entry, Dirty& dirty) {
    std::byte* p = bat_.data() + index * kBatEntrySize;
    dirty.old_entries.emplace_back(index, load_le<uint64_t>(p));
    store_le<uint64_t>(p, encode_bat_entry(entry));
    dirty.bat_sectors.insert(index * kBatEntrySize / kLogSectorSize);
}

Status VhdxNode::co_commit(Dirty& dirty) {
    if (dirty.bat_sectors.empty() && dirty.bitmap_sectors.empty()) return {};
    std::vector<SectorUpdate> updates;
    for (const auto& [chunk, sectors] : dirty.bitmap_sectors) {
        const BatEntry sb = bat_entry(sector_bitmap_bat_index(geometry_, chunk));
        const std::vector<std::byte>& bitmap = *dirty.bitmaps.at(chunk);
        for (uint64_t s : sectors) {
            SectorUpdate u;
            u.file_offset = sb.file_offset() + s * kLogSectorSize;
            u.data.assign(bitmap.begin() + s * kLogSectorSize,
                          bitmap.begin() + (s + 1) * kLogSectorSize);
            updates.push_back(std::move(u));
        }
    }
    for (uint64_t s : dirty.bat_sectors) {
        SectorUpdate u;
        u.file_offset = regions_.bat.file_offset + s * kLogSectorSize;
        u.data.assign(bat_.begin() + s * kLogSectorSize, bat_.begin() + (s + 1) * kLogSectorSize);
        updates.push_back(std::move(u));
    }
    // The payload (and fresh bitmap blocks) must be stable before the
    // metadata that publishes them.
    TRY(co_child_flush(file_));
    TRY(co_log_and_apply(updates));
    // The written copies are now the truth, even if a reader dropped and
    // reloaded a chunk meanwhile.
    for (const auto& [chunk, bitmap] : dirty.bitmaps)
        bitmaps_[chunk] = bitmap;
    return {};
}

void VhdxNode::rollback(Dirty& dirty) {
    for (auto it = dirty.old_entries.rbegin(); it != dirty.old_entries.rend(); ++it)
        store_le<uint64_t>(bat_.data() + it->first * kBatEntrySize, it->second);
    // Bits set for data that was never published: reload from the file.
    for (const auto& [chunk, bitmap] : dirty.bitmaps)
        bitmaps_.erase(chunk);
}

// Once the child holds every sector of a partially present block, the
// parent is never consulted for it again: the block becomes fully present
// (spec §2.5.1.1 lets a writer change the state; the bits stay set, and a
// fully present block's bitmap is not read). Sectors past the end of the
// virtual disk cannot be written, so only those inside it count.
void VhdxNode::promote_if_complete(uint64_t block, uint64_t file_offset,
                                   const std::vector<std::byte>& bitmap, Dirty& dirty) {
    const uint64_t bs = geometry_.block_size;
    const uint64_t lss = metadata_.logical_sector_size;
    const uint64_t first = (block * bs / lss) % kSectorsPerChunk;
    const uint64_t count = std::min(bs, size() - block * bs) / lss;
    uint64_t s = first;
    // Whole bytes first (a block's first sector is byte aligned: block
    // sizes are at least 1 MiB), then the tail bit by bit.
    for (; s + 8 <= first + count; s += 8)
        if (bitmap[s / 8] != std::byte{0xff}) return;
    for (; s < first + count; ++s)
        if (!bitmap_bit(bitmap, s)) return;
    set_entry(payload_bat_index(geometry_, block),
              make_bat_entry(static_cast<uint8_t>(PayloadState::kFullyPresent), file_offset),
              dirty);
}

// Writes one piece that lies inside one block, allocating as the block's
// state requires (spec §9.3).
Status VhdxNode::co_write_block_piece(uint64_t pos, uint64_t len, IoVector& piece, Dirty& dirty) {
    const uint64_t bs = geometry_.block_size;
    const uint64_t lss = metadata_.logical_sector_size;
    const uint64_t block = pos / bs;
    const uint64_t in_block = pos % bs;
    const uint64_t index = payload_bat_index(geometry_, block);
    const BatEntry e = bat_entry(index);
    const auto state = static_cast<PayloadState>(e.state);

    auto set_bits = [&](const Bitmap& shared, uint64_t chunk) {
        dirty.bitmaps[chunk] = shared;
        std::vector<std::byte>& bitmap = *shared;
        const uint64_t first = (pos / lss) % kSectorsPerChunk;
        const uint64_t count = len / lss;
        for (uint64_t s = first; s < first + count; ++s)
            bitmap[s / 8] =
                static_cast<std::byte>(static_cast<uint8_t>(bitmap[s / 8]) | (1u << (s % 8)));
        for (uint64_t sec = first / 8 / kLogSectorSize;
             sec <= (first + count - 1) / 8 / kLogSectorSize; ++sec)
            dirty.bitmap_sectors[chunk].insert(sec);
    };

    if (state == PayloadState::kFullyPresent || state == PayloadState::kPartiallyPresent) {
        if (e.file_offset() < kHeaderSectionSize)
            return Error{ErrorKind::kCorrupt, EFAULT,
                         "vhdx: payload block " + std::to_string(block) + " points at " +
                             hex(e.file_offset()) + ", inside the header section",
                         std::nullopt};
        TRY(co_child_pwritev(file_, e.file_offset() + in_block, len, piece));
        if (state == PayloadState::kPartiallyPresent) {
            const uint64_t chunk = pos / geometry_.chunk_size;
            ASSIGN_OR_RETURN(Bitmap bitmap, co_bitmap(chunk));
            set_bits(bitmap, chunk);
            promote_if_complete(block, e.file_offset(), *bitmap, dirty);
        }
        return {};
    }
    if (state != PayloadState::kNotPresent && !reads_as_zero_state(e.state))
        return Error{ErrorKind::kCorrupt, EIO,
                     "vhdx: payload block " + std::to_string(block) + " has reserved state " +
                         std::to_string(e.state),
                     std::nullopt};

    const bool whole = in_block == 0 && len == bs;
    if (state == PayloadState::kNotPresent && has_parent() && !whole) {
        // The rest of the block still comes from the parent: a partially
        // present block whose sector bitmap marks the written sectors.
        const uint64_t chunk = pos / geometry_.chunk_size;
        const uint64_t sb_index = sector_bitmap_bat_index(geometry_, chunk);
        // Taken before the bitmap block exists: all zero, every sector from
        // the parent; the new block is the file's zero extension, and the
        // sectors we set bits in go through the log.
        ASSIGN_OR_RETURN(Bitmap bitmap, co_bitmap(chunk));
        if (bat_entry(sb_index).state != kSectorBitmapPresent) {
            ASSIGN_OR_RETURN(uint64_t sb_offset, co_allocate(kSectorBitmapBlockSize));
            set_entry(sb_index, make_bat_entry(kSectorBitmapPresent, sb_offset), dirty);
        }
        ASSIGN_OR_RETURN(uint64_t offset, co_allocate(bs));
        TRY(co_child_pwritev(file_, offset + in_block, len, piece));
        set_bits(bitmap, chunk);
        set_entry(index,
                  make_bat_entry(static_cast<uint8_t>(PayloadState::kPartiallyPresent), offset),
                  dirty);
        promote_if_complete(block, offset, *bitmap, dirty);
        return {};
    }
    // The block reads as zeros (or is replaced whole): a new fully present
    // block whose uncovered bytes are the zero extension.
    ASSIGN_OR_RETURN(uint64_t offset, co_allocate(bs));
    TRY(co_child_pwritev(file_, offset + in_block, len, piece));
    set_entry(index, make_bat_entry(static_cast<uint8_t>(PayloadState::kFullyPresent), offset),
              dirty);
    return {};
}

// Writes that land entirely in fully present blocks change no metadata
// once this session's GUIDs are in the header, so they run without the
// lock, like reads. While the lock is held the in-memory BAT may hold
// entries not yet published (an allocation that could still be rolled
// back): such writes take the lock, and once they own it (everything is
// published then) they drop it again before the data I/O, so a queue of
// waiters never turns every later write into a locked one. Safe against a
// later zero write or discard of the same block: freed space is never
// reused (blocks are only allocated at the end of the file), so the data
// lands in an orphan at worst, as in any overlap of the two.
bool VhdxNode::writable_in_place(uint64_t offset, uint64_t bytes) const {
    if (!file_guid_done_ || !data_guid_done_) return false;
    const uint64_t bs = geometry_.block_size;
    for (uint64_t block = offset / bs; block <= (offset + bytes - 1) / bs; ++block) {
        const BatEntry e = bat_entry(payload_bat_index(geometry_, block));
        if (e.state != static_cast<uint8_t>(PayloadState::kFullyPresent) ||
            e.file_offset() < kHeaderSectionSize)
            return false;
    }
    return true;
}

Status VhdxNode::co_write_in_place(uint64_t offset, uint64_t bytes, IoVector& qiov) {
    const uint64_t bs = geometry_.block_size;
    if (offset / bs == (offset + bytes - 1) / bs) {
        const BatEntry e = bat_entry(payload_bat_index(geometry_, offset / bs));
        return co_child_pwritev(file_, e.file_offset() + offset % bs, bytes, qiov);
    }
    uint64_t done = 0;
    while (done < bytes) {
        const uint64_t pos = offset + done;
        const uint64_t len = std::min(bytes - done, bs - pos % bs);
        const BatEntry e = bat_entry(payload_bat_index(geometry_, pos / bs));
        IoVector piece = qiov.slice(done, len);
        TRY(co_child_pwritev(file_, e.file_offset() + pos % bs, len, piece));
        done += len;
    }
    return {};
}

Status VhdxNode::co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t) {
    if (!bad_entries_.empty()) return bad_block_error(bad_entries_.front());
    if (!write_lock_.locked() && writable_in_place(offset, bytes))
        return co_write_in_place(offset, bytes, qiov);
    CoMutexGuard guard(write_lock_);
    TRY(co_begin_write(true));
    if (writable_in_place(offset, bytes)) {
        guard.unlock();
        return co_write_in_place(offset, bytes, qiov);
    }
    Dirty dirty;
    const uint64_t bs = geometry_.block_size;
    uint64_t done = 0;
    Status status;
    while (done < bytes && status.ok()) {
        const uint64_t pos = offset + done;
        const uint64_t len = std::min(bytes - done, bs - pos % bs);
        IoVector piece = qiov.slice(done, len);
        status = co_write_block_piece(pos, len, piece, dirty);
        done += len;
    }
    if (status.ok()) status = co_commit(dirty);
    // Nothing was published: restore the in-memory state.
    if (!status.ok()) rollback(dirty);
    return status;
}

// Whole blocks become ZERO (or UNMAPPED for discard) without allocation;
// partial pieces of blocks that do not already read as zeros get zeros
// written. Fixed images keep every block allocated (spec note <6>).
Status VhdxNode::co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t) {
    if (!bad_entries_.empty()) return bad_block_error(bad_entries_.front());
    if (metadata_.file_parameters.leave_block_allocated)
        return unsupported_error("vhdx: fixed images write zeros as data");
    CoMutexGuard guard(write_lock_);
    TRY(co_begin_write(true));
    Dirty dirty;
    const uint64_t bs = geometry_.block_size;
    uint64_t done = 0;
    Status status;
    while (done < bytes && status.ok()) {
        const uint64_t pos = offset + done;
        const uint64_t len = std::min(bytes - done, bs - pos % bs);
        const uint64_t index = payload_bat_index(geometry_, pos / bs);
        const BatEntry e = bat_entry(index);
        if (len == bs || (pos % bs == 0 && pos + len == size())) {
            if (e.state != static_cast<uint8_t>(PayloadState::kZero))
                set_entry(index, make_bat_entry(static_cast<uint8_t>(PayloadState::kZero), 0),
                          dirty);
        } else if (!reads_as_zero_state(e.state)) {
            std::vector<std::byte> zeros(len);
            IoVector piece(zeros.data(), len);
            status = co_write_block_piece(pos, len, piece, dirty);
        }
        done += len;
    }
    if (status.ok()) status = co_commit(dirty);
    if (!status.ok()) rollback(dirty);
    return status;
}

Status VhdxNode::co_pdiscard(uint64_t offset, uint64_t bytes) {
    if (!bad_entries_.empty()) return bad_block_error(bad_entries_.front());
    // Advisory. Only whole blocks of dynamic images are unmapped; in a
    // differencing image UNMAPPED would hide the parent, which is allowed,
    // but keeping the data is the safer choice.
    if (metadata_.file_parameters.leave_block_allocated || has_parent()) return {};
    CoMutexGuard guard(write_lock_);
    const uint64_t bs = geometry_.block_size;
    Dirty dirty;
    for (uint64_t block = div_round_up(offset, bs); (block + 1) * bs <= offset + bytes; ++block) {
        const uint64_t index = payload_bat_index(geometry_, block);
        if (bat_entry(index).state == static_cast<uint8_t>(PayloadState::kFullyPresent)) {
            if (dirty.old_entries.empty()) TRY(co_begin_write(true));
            set_entry(index, make_bat_entry(static_cast<uint8_t>(PayloadState::kUnmapped), 0),
                      dirty);
        }
    }
    Status status = co_commit(dirty);
    if (!status.ok())
        for (auto it = dirty.old_entries.rbegin(); it != dirty.old_entries.rend(); ++it)
            store_le<uint64_t>(bat_.data() + it->first * kBatEntrySize, it->second);
    return status;
}

}  // namespace coblock
