// The vhdx format driver's node: opens dynamic, fixed and differencing VHDX
// images (replaying a pending log into the file, or into an in-memory overlay
// on read-only opens), reads every payload block state, allocates blocks and
// publishes BAT and sector bitmap updates through the log, and answers block
// status, check and grow. The pure decoders live in formats/vhdx.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "block/child.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/node.h"
#include "coroutine/co_mutex.h"
#include "formats/vhdx/vhdx.h"

namespace coblock {

// A random RFC 4122 version-4 GUID (never zero).
vhdx::Guid random_vhdx_guid();

extern const BlockDriver kVhdxDriver;

class VhdxNode final : public BlockNode {
  public:
    explicit VhdxNode(const BlockDriver& driver) : BlockNode(driver) {}

    // Opens the image on the already attached `file` child (see vhdx_open.cc).
    Status co_init(OpenContext& ctx);

    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags) override;
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags) override;
    Status co_pdiscard(uint64_t offset, uint64_t bytes) override;
    Result<BlockStatus> co_block_status(uint64_t offset, uint64_t bytes, bool want_zero) override;
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok) override;
    Status co_check(CheckResult& result, CheckFix fix) override;
    Status co_reopen(const OpenFlags& flags) override;
    Status co_flush() override;
    Status co_close() override;
    nlohmann::ordered_json info_specific() override { return nullptr; }  // QEMU 7.2 prints none
    // QEMU's vhdx_get_info: the payload block size as the cluster size.
    Result<NodeInfo> get_info() override {
        return NodeInfo{static_cast<int64_t>(geometry_.block_size), 0};
    }
    std::string backing_filename() const override { return backing_name_; }
    std::string backing_format() const override { return has_parent() ? "vhdx" : ""; }

    // For differencing children and tests.
    const vhdx::Header& header() const { return headers_.current; }
    const vhdx::ImageMetadata& metadata() const { return metadata_; }
    const vhdx::BatGeometry& geometry() const { return geometry_; }
    bool has_parent() const { return metadata_.file_parameters.has_parent; }
    // True when a pending log was replayed at open (into the file, or into
    // the overlay when read-only).
    bool log_replayed() const { return log_replayed_; }
    bool log_in_overlay() const { return !overlay_.empty(); }
    vhdx::BatEntry bat_entry(uint64_t index) const;

  private:
    // ---- open (vhdx_open.cc) ----
    Status co_replay_log(OpenContext& ctx, uint64_t file_size);
    // Writes the replayed sequence into the file and clears the log GUID.
    Status co_apply_replay(const std::vector<vhdx::ReplayWrite>& writes, uint64_t end);
    Status co_load_regions_and_metadata();
    Status co_load_bat();
    Status co_open_parent(OpenContext& ctx);

    // ---- file access (vhdx_io.cc) ----
    // Logical file size: the file's, or larger when the overlay extends it.
    uint64_t file_size() const;
    // Reads through the overlay; bytes past the end read as zeros.
    Status co_read_file(uint64_t offset, void* buf, size_t bytes);
    Status co_read_file_v(uint64_t offset, uint64_t bytes, IoVector& qiov);
    Status co_read_parent(uint64_t offset, uint64_t bytes, IoVector& qiov);
    // A chunk's 1 MiB sector bitmap, cached (a bounded number of chunks).
    // Shared so a cached copy can be dropped while a request still uses it.
    using Bitmap = std::shared_ptr<std::vector<std::byte>>;
    Result<Bitmap> co_bitmap(uint64_t chunk);
    bool bitmap_bit(const std::vector<std::byte>& bitmap, uint64_t sector_in_chunk) const;

    // ---- write machinery (vhdx_io.cc) ----
    struct Dirty {
        std::set<uint64_t> bat_sectors;                          // 4 KiB sector numbers of the BAT
        std::map<uint64_t, std::set<uint64_t>> bitmap_sectors;   // chunk -> sector numbers
        std::vector<std::pair<uint64_t, uint64_t>> old_entries;  // (index, raw) for rollback
        std::map<uint64_t, std::shared_ptr<std::vector<std::byte>>> bitmaps;  // chunk -> modified
    };
    Status co_begin_write(bool user_visible);
    Status co_update_headers(const vhdx::Header& fields);
    Result<uint64_t> co_allocate(uint64_t bytes);
    void set_entry(uint64_t index, const vhdx::BatEntry& entry, Dirty& dirty);
    // True when every block of the range is fully present and the session
    // GUIDs are written: the write needs no metadata change (and no lock).
    bool writable_in_place(uint64_t offset, uint64_t bytes) const;
    Status co_write_in_place(uint64_t offset, uint64_t bytes, IoVector& qiov);
    // Makes a partially present block fully present once its sector bitmap
    // marks every sector inside the disk.
    void promote_if_complete(uint64_t block, uint64_t file_offset,
                             const std::vector<std::byte>& bitmap, Dirty& dirty);
    Status co_write_block_piece(uint64_t offset, uint64_t bytes, IoVector& qiov, Dirty& dirty);
    Status co_commit(Dirty& dirty);
    // Undoes the in-memory effects of a write that failed before commit.
    void rollback(Dirty& dirty);
    // Logs the sector updates (entry durable), then applies them (durable).
    // The log stays live (GUID set) until co_empty_log.
    Status co_log_and_apply(const std::vector<vhdx::SectorUpdate>& updates);
    Status co_empty_log();

    // Sector updates of both region tables with the BAT at a new place.
    Status co_region_table_updates(uint64_t bat_offset, uint64_t bat_length,
                                   std::vector<vhdx::SectorUpdate>& updates);

    bool reads_as_zero_state(uint8_t state) const;
    // BAT entries that point outside the file, into the fixed objects or at
    // another block, or carry a state invalid for this image (sorted).
    std::vector<uint64_t> scan_bad_entries() const;
    bool is_bad(uint64_t index) const;
    Error bad_block_error(uint64_t index) const;

    BdrvChild* file_ = nullptr;
    BdrvChild* parent_ = nullptr;
    vhdx::HeaderSelection headers_;
    vhdx::KnownRegions regions_;
    std::vector<vhdx::Extent> extents_;
    vhdx::ImageMetadata metadata_;
    uint64_t metadata_item_size_offset_ = 0;  // file offset of the virtual disk size item
    vhdx::BatGeometry geometry_;
    std::vector<std::byte> bat_;  // the BAT region's first sectors, 4 KiB multiple
    // Entries found bad at open: I/O to them fails, writes are refused until
    // a check with repair resets them (QEMU counts them in check as well).
    std::vector<uint64_t> bad_entries_;
    std::map<uint64_t, Bitmap> bitmaps_;  // chunk -> 1 MiB bitmap block
    std::optional<vhdx::VhdxParentLinkage> linkage_;
    std::string backing_name_;

    // Read-only replay: the writes of the active log sequence, applied in
    // order on top of every file read.
    std::vector<vhdx::ReplayWrite> overlay_;
    uint64_t overlay_file_size_ = 0;
    bool log_replayed_ = false;
    bool log_pending_read_only_ = false;

    // Write session state (spec §5.3): the FileWriteGuid of this session is
    // installed before the first modification, a new DataWriteGuid before
    // the first user-visible one.
    vhdx::Guid session_guid_;
    bool file_guid_done_ = false;
    bool data_guid_done_ = false;
    uint64_t log_sequence_ = 1;
    bool log_open_ = false;      // our log GUID is in the header
    uint64_t log_position_ = 0;  // where the next entry goes
    CoMutex write_lock_;
};

}  // namespace coblock
