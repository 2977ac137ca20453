// Opening a VHDX image (spec vhdx.md §15 order): signature, headers, log
// replay (into the file when read-write, into an overlay when read-only),
// region table, metadata, BAT, and for differencing images the parent.
#include <filesystem>
#include <random>

#include "block/io.h"
#include "drivers/vhdx/vhdx_node.h"

namespace coblock {

using namespace vhdx;

namespace {

// The replay planner costs (log positions x log length) on a hostile log,
// so a log longer than this is refused before it is searched. QEMU and
// Hyper-V use 1 MiB logs.
constexpr uint64_t kMaxReplayLogLength = 8 * kMiB;

// Parents open recursively on the opener's coroutine stack; a locator that
// points back into its own chain would recurse forever.
constexpr int kMaxParentDepth = 32;
thread_local int t_parent_depth = 0;

}  // namespace

Guid random_vhdx_guid() {
    static thread_local std::mt19937_64 rng{[] {
        std::random_device rd;
        return (uint64_t{rd()} << 32) ^ rd();
    }()};
    std::array<std::byte, 16> raw;
    for (size_t i = 0; i < 16; i += 8)
        store_le<uint64_t>(raw.data() + i, rng());
    raw[7] = static_cast<std::byte>((static_cast<uint8_t>(raw[7]) & 0x0f) | 0x40);  // version 4
    raw[8] = static_cast<std::byte>((static_cast<uint8_t>(raw[8]) & 0x3f) | 0x80);  // variant
    return Guid::from_bytes(ByteSpan(raw.data(), raw.size()));
}

BatEntry VhdxNode::bat_entry(uint64_t index) const {
    return decode_bat_entry(load_le<uint64_t>(bat_.data() + index * kBatEntrySize));
}

Status VhdxNode::co_init(OpenContext& ctx) {
    file_ = file();
    session_guid_ = random_vhdx_guid();
    const uint64_t real_size = file_->node()->size();
    if (real_size < kHeaderSectionReadSize)
        return corrupt_error("vhdx: file of " + std::to_string(real_size) +
                             " bytes is shorter than the header section");

    std::vector<std::byte> head(kHeaderSectionReadSize);
    TRY(co_child_pread(file_, 0, head.data(), head.size()));
    if (auto id = parse_file_identifier(ByteSpan(head)); !id) return id.error();
    ASSIGN_OR_RETURN(headers_, select_header(ByteSpan(head).subspan(kHeader1Offset, kHeaderSize),
                                             ByteSpan(head).subspan(kHeader2Offset, kHeaderSize)));

    if (!headers_.current.log_guid.is_zero()) TRY(co_replay_log(ctx, real_size));

    TRY(co_load_regions_and_metadata());
    TRY(co_load_bat());
    if (has_parent()) TRY(co_open_parent(ctx));

    set_size(metadata_.virtual_disk_size);
    mutable_limits().request_alignment = metadata_.logical_sector_size;
    set_supported_zero_flags(kReqMayUnmap);
    return {};
}

Status VhdxNode::co_replay_log(OpenContext& ctx, uint64_t real_size) {
    const Header& h = headers_.current;
    if (h.log_length > kMaxReplayLogLength)
        return unsupported_error("vhdx: log of " + std::to_string(h.log_length) +
                                 " bytes needs replay; logs longer than " +
                                 std::to_string(kMaxReplayLogLength) + " bytes are not replayed");
    uint64_t log_end = 0;
    if (!checked_add(h.log_offset, h.log_length, &log_end) || log_end > real_size)
        return corrupt_error("vhdx: log " + hex(h.log_offset) + "+" + hex(h.log_length) +
                             " lies beyond the end of the file (" + hex(real_size) + ")");
    std::vector<std::byte> log(h.log_length);
    TRY(co_child_pread(file_, h.log_offset, log.data(), log.size()));
    LogReplayOptions options;
    // QEMU opens files whose log GUID matches no entry; so do we (the next
    // log write installs a fresh GUID anyway).
    options.tolerate_missing_sequence = true;
    ASSIGN_OR_RETURN(LogReplayPlan plan, plan_log_replay(h, ByteSpan(log), real_size, options));
    if (!plan.active) return {};
    log_replayed_ = true;
    uint64_t end = plan.extend_file_to;
    for (const ReplayWrite& w : plan.writes)
        end = std::max(end, w.file_offset + (w.is_zero() ? w.zero_length : w.data.size()));

    if (ctx.flags().read_only) {
        overlay_ = std::move(plan.writes);
        overlay_file_size_ = std::max(real_size, end);
        log_pending_read_only_ = true;
        return {};
    }
    log_sequence_ = plan.next_sequence_number;
    return co_apply_replay(plan.writes, end);
}

Status VhdxNode::co_apply_replay(const std::vector<ReplayWrite>& writes, uint64_t end) {
    // Spec §11.5: new FileWriteGuid (and DataWriteGuid) before the first
    // replay write, keeping the log GUID so a crash replays again.
    TRY(co_begin_write(true));
    if (end > file_->node()->size())
        TRY(co_child_truncate(file_, end, /*exact=*/true, Prealloc::kOff, false));
    for (const ReplayWrite& w : writes) {
        if (w.is_zero())
            TRY(co_child_pwrite_zeroes(file_, w.file_offset, w.zero_length));
        else
            TRY(co_child_pwrite(file_, w.file_offset, w.data.data(), w.data.size()));
    }
    TRY(co_child_flush(file_));
    Header fields = headers_.current;
    fields.log_guid = Guid{};
    return co_update_headers(fields);
}

// Read-only -> read-write: the overlay becomes real before anything else
// is written, as a read-write open would have done.
Status VhdxNode::co_reopen(const OpenFlags& flags) {
    if (flags.read_only || overlay_.empty()) return {};
    TRY(co_apply_replay(overlay_, overlay_file_size_));
    overlay_.clear();
    overlay_file_size_ = 0;
    log_pending_read_only_ = false;
    return {};
}

Status VhdxNode::co_load_regions_and_metadata() {
    // Through the overlay: a replayed log may have rewritten the region table.
    std::vector<std::byte> tables(2 * kRegionTableSize);
    TRY(co_read_file(kRegionTable1Offset, tables.data(), tables.size()));
    ASSIGN_OR_RETURN(RegionTableChoice choice,
                     select_region_table(ByteSpan(tables).first(kRegionTableSize),
                                         ByteSpan(tables).subspan(kRegionTableSize)));
    ASSIGN_OR_RETURN(regions_, classify_regions(choice.table));
    extents_ = image_extents(headers_.current, regions_);
    TRY(check_extents(extents_, file_size()));

    std::vector<std::byte> table_bytes(kMetadataTableSize);
    if (regions_.metadata.length < kMetadataTableSize)
        return corrupt_error("vhdx: metadata region of " + hex(regions_.metadata.length) +
                             " bytes cannot hold the metadata table");
    TRY(co_read_file(regions_.metadata.file_offset, table_bytes.data(), table_bytes.size()));
    ASSIGN_OR_RETURN(MetadataTable table,
                     parse_metadata_table(ByteSpan(table_bytes), regions_.metadata.length));
    ASSIGN_OR_RETURN(std::vector<MetadataItemRead> reads,
                     plan_metadata_item_reads(table, regions_.metadata.file_offset));
    std::vector<std::vector<std::byte>> storage;
    storage.reserve(reads.size());
    std::vector<MetadataItemBytes> items;
    for (const MetadataItemRead& r : reads) {
        storage.emplace_back(r.length);
        TRY(co_read_file(r.file_offset, storage.back().data(), r.length));
        items.push_back({r.item_id, ByteSpan(storage.back())});
        if (r.item_id == kVirtualDiskSizeGuid) metadata_item_size_offset_ = r.file_offset;
    }
    ASSIGN_OR_RETURN(metadata_, parse_image_metadata(table, items));
    if (metadata_.file_parameters.has_parent) {
        ASSIGN_OR_RETURN(VhdxParentLinkage linkage,
                         decode_vhdx_parent_locator(*metadata_.parent_locator));
        linkage_ = std::move(linkage);
    } else if (metadata_.parent_locator) {
        return corrupt_error(
            "vhdx: parent locator present but the file parameters say the "
            "image has no parent");
    }
    return {};
}

Status VhdxNode::co_load_bat() {
    ASSIGN_OR_RETURN(geometry_, compute_bat_geometry(metadata_.file_parameters.block_size,
                                                     metadata_.logical_sector_size,
                                                     metadata_.virtual_disk_size, has_parent()));
    TRY(check_bat_region_length(geometry_, regions_.bat.length));
    const uint64_t bytes =
        std::min<uint64_t>(align_up(geometry_.table_bytes(), kLogSectorSize), regions_.bat.length);
    bat_.assign(std::max<uint64_t>(bytes, kLogSectorSize), std::byte{0});
    TRY(co_read_file(regions_.bat.file_offset, bat_.data(), bytes));
    if (check_bat(geometry_, ByteSpan(bat_).first(geometry_.table_bytes()), file_size(), extents_)
            .ok())
        return {};
    // As QEMU under qemu-img check: open anyway, but keep away from the bad
    // entries (EIO) and write nothing until check -r repairs them.
    bad_entries_ = scan_bad_entries();
    return {};
}

namespace {

// Candidate host paths for one stored locator path (spec §10.3).
std::string to_host_path(std::string path, const std::filesystem::path& child_dir) {
    if (path.rfind("\\\\?\\", 0) == 0) path = path.substr(4);
    for (char& c : path)
        if (c == '\\') c = '/';
    if (path.rfind("./", 0) == 0) path = path.substr(2);
    std::filesystem::path p(path);
    if (p.is_relative()) p = child_dir / p;
    return p.lexically_normal().string();
}

}  // namespace

Status VhdxNode::co_open_parent(OpenContext& ctx) {
    std::string child_name = ctx.filename().empty() ? file_->node()->filename() : ctx.filename();
    std::filesystem::path child_dir = std::filesystem::path(child_name).parent_path();
    std::vector<std::string> tried;
    std::string chosen;
    auto consider = [&](const std::optional<std::string>& stored) {
        if (!stored || !chosen.empty()) return;
        std::string host = to_host_path(*stored, child_dir);
        tried.push_back(host);
        std::error_code ec;
        if (std::filesystem::exists(host, ec)) chosen = host;
    };
    consider(linkage_->relative_path);
    consider(linkage_->volume_path);
    consider(linkage_->absolute_win32_path);
    if (chosen.empty()) {
        // A Windows path cannot be resolved here: try its file name next to
        // the child.
        for (const auto* stored : {&linkage_->relative_path, &linkage_->absolute_win32_path}) {
            if (!*stored) continue;
            std::string name = to_host_path(**stored, "/");
            consider(std::string(std::filesystem::path(name).filename()));
        }
    }
    backing_name_ = linkage_->relative_path.value_or(linkage_->absolute_win32_path.value_or(""));
    for (char& c : backing_name_)
        if (c == '\\') c = '/';
    if (ctx.flags().no_backing) return {};
    const bool overridden = ctx.options().has("backing") || ctx.options().has("backing.driver") ||
                            ctx.options().has("backing.file.filename");
    if (chosen.empty() && !overridden) {
        std::string list;
        for (const std::string& t : tried)
            list += (list.empty() ? "" : ", ") + t;
        return make_error(ErrorKind::kNotFound,
                          "vhdx: cannot find the parent image (tried " + list + ")");
    }
    if (t_parent_depth >= kMaxParentDepth)
        return invalid_argument("vhdx: differencing chain deeper than " +
                                std::to_string(kMaxParentDepth) + " images at " + chosen +
                                " (does a parent locator point back into the chain?)");
    ++t_parent_depth;
    auto opened = ctx.co_open_child(*this, "backing", kRoleBacking, chosen,
                                    /*probe_format=*/true, "vhdx");
    --t_parent_depth;
    ASSIGN_OR_RETURN(parent_, std::move(opened));
    auto* parent = dynamic_cast<VhdxNode*>(parent_->node());
    if (!parent)
        return invalid_argument("vhdx: the parent of a differencing image must be a vhdx image");
    const Guid& guid = parent->header().data_write_guid;
    if (!linkage_->matches(guid))
        return corrupt_error("vhdx: parent " + parent->filename() + " has DataWriteGuid " +
                             guid.to_string(true) + " but the child expects " +
                             linkage_->parent_linkage.to_string(true) +
                             " (the parent was modified after the child was made)");
    if (parent->metadata().logical_sector_size != metadata_.logical_sector_size)
        return corrupt_error("vhdx: parent logical sector size " +
                             std::to_string(parent->metadata().logical_sector_size) +
                             " differs from the child's " +
                             std::to_string(metadata_.logical_sector_size));
    return {};
}

}  // namespace coblock
