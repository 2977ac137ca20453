// Opening a qcow2 image: registration and probe, header validation, the
// L1/refcount/snapshot tables, runtime options, the backing file, and the
// node-wide safety nets (overlap checks, corruption handling), info, close.
#include <cstdio>
#include <iostream>

#include "block/create.h"
#include "block/driver.h"
#include "block/graph.h"
#include "block/io.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/header.h"
#include "formats/qcow2/refcount.h"
#include "formats/qcow2/table_placement.h"

namespace coblock::qcow2drv {

using qcow2::hex_string;

namespace {

const qapi::Schema<Qcow2Options> kOpenSchema(
    "qcow2",
    {
        qapi::size_field("l2-cache-size", &Qcow2Options::l2_cache_size, qapi::kNoDefault,
                         "Maximum L2 table cache size"),
        qapi::size_field("l2-cache-entry-size", &Qcow2Options::l2_cache_entry_size,
                         qapi::kNoDefault, "Size of each entry in the L2 cache"),
        qapi::size_field("refcount-cache-size", &Qcow2Options::refcount_cache_size,
                         qapi::kNoDefault, "Maximum refcount block cache size"),
        qapi::size_field("cache-size", &Qcow2Options::cache_size, qapi::kNoDefault,
                         "Maximum combined metadata (L2 tables and refcount blocks) cache size"),
        qapi::bool_field("lazy-refcounts", &Qcow2Options::lazy_refcounts, qapi::kNoDefault,
                         "Postpone refcount updates"),
        qapi::string_field("overlap-check", &Qcow2Options::overlap_check, qapi::kNoDefault,
                           "Selects which overlap checks to perform"),
        qapi::bool_field("pass-discard-request", &Qcow2Options::pass_discard_request,
                         qapi::kNoDefault, "Pass guest discard requests to the layer below"),
        qapi::bool_field("pass-discard-snapshot", &Qcow2Options::pass_discard_snapshot,
                         qapi::kNoDefault,
                         "Generate discard requests when snapshot related "
                         "space is freed"),
        qapi::bool_field("pass-discard-other", &Qcow2Options::pass_discard_other, qapi::kNoDefault,
                         "Generate discard requests when other clusters are "
                         "freed"),
        qapi::uint_field("cache-clean-interval", &Qcow2Options::cache_clean_interval,
                         qapi::kNoDefault, "Clean unused cache entries after this time"),
    });

constexpr const char* kOverlapNames[] = {
    "main-header",    "active-l1",   "active-l2",   "refcount-table",   "refcount-block",
    "snapshot-table", "inactive-l1", "inactive-l2", "bitmap-directory",
};
constexpr const char* kOverlapDescriptions[] = {
    "qcow2_header",      "active L1 table",   "active L2 table",
    "refcount table",    "refcount block",    "snapshot table",
    "inactive L1 table", "inactive L2 table", "bitmap directory",
};

// Nesting depth of backing files being opened (QEMU has no fixed limit but
// recursion must end on a looping chain).
thread_local int backing_depth = 0;
constexpr int kMaxBackingDepth = 64;

int probe_qcow2(ByteSpan head, std::string_view) {
    if (head.size() < 8) return 0;
    if (load_be<uint32_t>(head.data()) == qcow2::kMagic && load_be<uint32_t>(head.data() + 4) >= 2)
        return 100;
    return 0;
}

Result<std::unique_ptr<BlockNode>> co_open_qcow2(OpenContext& ctx);

}  // namespace

// Defined in qcow2_create.cc.
extern const qapi::OptionSchema& qcow2_create_schema();
Status co_create_qcow2_image(CreateContext& ctx);

const BlockDriver& qcow2_driver();

namespace {

Result<std::unique_ptr<BlockNode>> co_open_qcow2(OpenContext& ctx) {
    // overlap-check.<name> keys are not part of the flat schema.
    qapi::OptionsTree overlap_keys = ctx.options().extract_subtree("overlap-check");
    ASSIGN_OR_RETURN(Qcow2Options options, kOpenSchema.parse(ctx.options()));
    auto node = std::make_unique<Qcow2Node>(qcow2_driver());
    // Apply overlap-check.* after the template.
    std::optional<std::string> template_name;
    if (auto t = overlap_keys.take("template")) template_name = *t;
    if (template_name) options.overlap_check = template_name;
    TRY(node->co_open(ctx, options));
    for (const auto& entry : overlap_keys) {
        bool known = false;
        for (const char* name : kOverlapNames)
            known |= entry.first == name;
        if (!known)
            return invalid_argument(
                "Block format 'qcow2' does not support the option "
                "'overlap-check." +
                entry.first + "'");
        ASSIGN_OR_RETURN(
            bool on, qapi::parse_bool_option("overlap-check." + entry.first, entry.second.text));
        (void)on;
    }
    (void)node->apply_overlap_keys(overlap_keys);
    return std::unique_ptr<BlockNode>(std::move(node));
}

}  // namespace

Status Qcow2Node::apply_overlap_keys(const qapi::OptionsTree& keys) {
    for (const auto& entry : keys) {
        for (uint32_t bit = 0; bit < 9; ++bit) {
            if (entry.first != kOverlapNames[bit]) continue;
            if (entry.second.text == "on")
                overlap_mask_ |= 1u << bit;
            else
                overlap_mask_ &= ~(1u << bit);
        }
    }
    return {};
}

Qcow2Node::~Qcow2Node() = default;

// Reads [offset, offset+len) of the file; bytes past its end read as zeros.
static Status read_padded(BdrvChild* file, uint64_t offset, std::byte* out, uint64_t len) {
    std::fill(out, out + len, std::byte{0});
    const uint64_t fsize = file->node()->size();
    if (offset >= fsize) return {};
    const uint64_t avail = std::min(len, fsize - offset);
    return co_child_pread(file, offset, out, avail);
}

namespace {

// Default upper bound of the L2 cache (QEMU's DEFAULT_L2_CACHE_MAX_SIZE).
constexpr uint64_t kDefaultL2CacheMax = 32u << 20;
// Minimum cache sizes in entries (QEMU's MIN_L2_CACHE_SIZE and
// MIN_REFCOUNT_CACHE_SIZE).
constexpr uint64_t kMinL2CacheEntries = 2;
constexpr uint64_t kMinRefcountCacheClusters = 4;

struct CacheSizes {
    uint64_t l2_size = 0;        // bytes, a multiple of l2_entry_size
    uint64_t l2_entry_size = 0;  // bytes per cached L2 slice
    uint64_t refcount_size = 0;  // bytes, a multiple of the cluster size
};

// QEMU 7.2's read_cache_sizes and the minimums of
// qcow2_update_options_prepare: by default the L2 cache covers the whole
// disk up to 32 MiB and the refcount cache holds 4 clusters; cache-size is
// split between the two; when the L2 cache cannot cover the disk and no
// entry size was given, slices of min(cluster, 4 KiB) make misses cheap.
Result<CacheSizes> cache_sizes(const Qcow2Options& o, const qcow2::Geometry& g,
                               uint64_t disk_size) {
    const uint64_t cs = g.cluster_size();
    const uint64_t min_refcount = kMinRefcountCacheClusters * cs;
    const uint64_t max_l2_cache = align_up(div_round_up(disk_size, cs) * g.l2_entry_size(), cs);
    CacheSizes out;
    out.l2_entry_size = o.l2_cache_entry_size.value_or(cs);
    out.refcount_size = o.refcount_cache_size.value_or(0);
    const uint64_t l2_setting = o.l2_cache_size.value_or(kDefaultL2CacheMax);
    out.l2_size = std::min(max_l2_cache, l2_setting);
    if (o.cache_size) {
        const uint64_t combined = *o.cache_size;
        if (o.l2_cache_size && o.refcount_cache_size)
            return invalid_argument(
                "cache-size, l2-cache-size and refcount-cache-size may not be set at the same "
                "time");
        if (o.l2_cache_size && l2_setting > combined)
            return invalid_argument("l2-cache-size may not exceed cache-size");
        if (out.refcount_size > combined)
            return invalid_argument("refcount-cache-size may not exceed cache-size");
        if (o.l2_cache_size) {
            out.refcount_size = combined - out.l2_size;
        } else if (o.refcount_cache_size) {
            out.l2_size = combined - out.refcount_size;
        } else if (combined >= max_l2_cache + min_refcount) {
            out.l2_size = max_l2_cache;
            out.refcount_size = combined - out.l2_size;
        } else {
            out.refcount_size = std::min(combined, min_refcount);
            out.l2_size = combined - out.refcount_size;
        }
    }
    if (out.l2_size < max_l2_cache && !o.l2_cache_entry_size)
        out.l2_entry_size = std::min<uint64_t>(cs, 4096);
    const uint64_t e = out.l2_entry_size;
    if (e < (uint64_t{1} << qcow2::kMinClusterBits) || e > cs || (e & (e - 1)) != 0)
        return invalid_argument(
            "L2 cache entry size must be a power of two between 512 and the cluster size (" +
            std::to_string(cs) + ")");
    // An extended L2 entry is 16 bytes: a 512-byte slice still holds 32.
    out.l2_size = std::max(out.l2_size / e, kMinL2CacheEntries) * e;
    if (out.l2_size / e > 0x7fffffff) return invalid_argument("L2 cache size too big");
    out.refcount_size = std::max(out.refcount_size / cs, kMinRefcountCacheClusters) * cs;
    if (out.refcount_size / cs > 0x7fffffff) return invalid_argument("Refcount cache size too big");
    return out;
}

}  // namespace

Status Qcow2Node::co_open(OpenContext& ctx, const Qcow2Options& options) {
    TRY(ctx.co_open_child(*this, "file", kRoleFile, ctx.filename(), /*probe_format=*/false));
    file_ = file();
    set_filename(ctx.filename());
    const bool read_only = ctx.flags().read_only;

    std::byte probe[qcow2::kHeaderProbeBytes];
    TRY(read_padded(file_, 0, probe, sizeof probe));
    ASSIGN_OR_RETURN(uint64_t cs, qcow2::probe_cluster_size(ByteSpan(probe, sizeof probe)));
    std::vector<std::byte> cluster0(cs);
    TRY(read_padded(file_, 0, cluster0.data(), cs));
    qcow2::HeaderParseOptions parse_options;
    parse_options.check_mode = ctx.flags().check;
    ASSIGN_OR_RETURN(image_, qcow2::parse_image_header(cluster0, parse_options));
    const qcow2::Header& h = image_.header;
    geom_ = qcow2::header_geometry(h);

    // qemu-img check may open a corrupt image read-write to repair it.
    if ((h.incompatible_features & qcow2::kIncompatCorrupt) && !read_only && !ctx.flags().check)
        return Error{ErrorKind::kPermission, EACCES,
                     "qcow2: Image is corrupt; cannot be opened read/write", std::nullopt};
    corrupt_ = (h.incompatible_features & qcow2::kIncompatCorrupt) != 0;
    if (h.incompatible_features & qcow2::kIncompatDataFile)
        return unsupported_error(
            "qcow2: external data files (incompatible feature bit 2) are not supported");
    if (h.refcount_table_clusters == 0 && !ctx.flags().check)
        return corrupt_error("qcow2: Image does not contain a reference count table");

    set_size(qcow2::virtual_disk_size(h));
    // check reads what it can of a damaged image and reports the rest.
    if (!ctx.flags().check) TRY(qcow2::check_table_placement(h, file_->node()->size()));

    // Tables.
    const qcow2::HeaderPlan plan = qcow2::header_plan(h);
    {
        std::vector<std::byte> bytes(plan.l1_table.length);
        TRY(read_padded(file_, plan.l1_table.offset, bytes.data(), bytes.size()));
        ASSIGN_OR_RETURN(l1_, qcow2::decode_be64_table(bytes, h.l1_size, "l1 table"));
    }
    {
        ::coblock::co_debug_event(file_, BlkdebugEvent::kReftableLoad);
        std::vector<std::byte> bytes(plan.refcount_table.length);
        TRY(read_padded(file_, plan.refcount_table.offset, bytes.data(), bytes.size()));
        ASSIGN_OR_RETURN(reftable_,
                         qcow2::decode_be64_table(bytes, bytes.size() / 8, "refcount table"));
        for (uint64_t i = 0; i < reftable_.size(); ++i) {
            qcow2::RefcountTableEntry e = qcow2::decode_refcount_table_entry(reftable_[i]);
            if (e.reserved_bits || !geom_.is_cluster_aligned(e.block_offset))
                return corrupt_error("qcow2: refcount table entry " + std::to_string(i) +
                                     " is invalid: " + hex_string(reftable_[i]));
            reftable_[i] = e.block_offset;
        }
    }
    if (h.nb_snapshots > 0) {
        // The table's length is only known by walking it: read a prefix
        // and double it until the scan completes. Growing by the one entry
        // each scan asks for would read and rescan the table once per
        // entry (8192 empty entries took 2.4 s in the fuzzing build).
        uint64_t want = 4096;
        std::vector<std::byte> bytes;
        for (;;) {
            bytes.resize(want);
            TRY(read_padded(file_, h.snapshots_offset, bytes.data(), bytes.size()));
            ASSIGN_OR_RETURN(qcow2::SnapshotTableScan scan,
                             qcow2::scan_snapshot_table(bytes, h.nb_snapshots));
            if (scan.complete) {
                snapshot_table_bytes_ = scan.bytes;
                bytes.resize(scan.bytes);
                break;
            }
            if (scan.bytes <= want) return corrupt_error("qcow2: snapshot table scan stalled");
            // scan_snapshot_table bounds the table (64 MiB), so this ends.
            want = std::max(scan.bytes, std::min(want * 2, qcow2::kMaxSnapshotTableBytes));
        }
        auto parsed = qcow2::parse_snapshot_table(bytes, h.nb_snapshots);
        if (parsed.ok())
            snapshots_ = std::move(*parsed);
        else if (!ctx.flags().check)  // check reports what it can without them
            return std::move(parsed).error();
    }

    // Runtime options.
    lazy_refcounts_ = (h.compatible_features & qcow2::kCompatLazyRefcounts) != 0;
    if (options.lazy_refcounts) {
        if (*options.lazy_refcounts && h.version < qcow2::kVersion3)
            return invalid_argument(
                "Lazy refcounts require a qcow2 image with at least qemu 1.1 compatibility "
                "level");
        lazy_refcounts_ = *options.lazy_refcounts;
    }
    if (options.overlap_check) {
        const std::string& t = *options.overlap_check;
        if (t == "none")
            overlap_mask_ = 0;
        else if (t == "constant")
            overlap_mask_ = kOverlapConstant;
        else if (t == "cached")
            overlap_mask_ = kOverlapCached;
        else if (t == "all")
            overlap_mask_ = kOverlapAll;
        else
            return invalid_argument("Unsupported value '" + t +
                                    "' for qcow2 option "
                                    "'overlap-check'. Allowed are any of the following: none, "
                                    "constant, cached, all");
    }
    pass_discard_request_ =
        options.pass_discard_request.value_or(ctx.flags().discard == DiscardMode::kUnmap);
    pass_discard_snapshot_ = options.pass_discard_snapshot.value_or(true);
    pass_discard_other_ = options.pass_discard_other.value_or(false);
    ASSIGN_OR_RETURN(const CacheSizes sizes, cache_sizes(options, geom_, size()));
    l2_slice_entries_ = sizes.l2_entry_size / geom_.l2_entry_size();
    l2_cache_ = MetaCache(sizes.l2_size / sizes.l2_entry_size);
    refcount_cache_ = MetaCache(sizes.refcount_size / cs);

    rebuild_metadata_sets();

    // Backing file.
    if (auto b = ctx.options().find("backing");
        b && (b->kind == qapi::ValueKind::kNull || (b->is_scalar() && b->text.empty()) ||
              (b->is_scalar() && b->text == "null"))) {
        ctx.options().erase("backing");
    } else if (image_.backing_file && !ctx.flags().no_backing) {
        std::string path = *image_.backing_file;
        const std::string& self = ctx.filename();
        if (!path.empty() && path[0] != '/' && path.find("://") == std::string::npos &&
            path.find(':') == std::string::npos) {
            const size_t slash = self.rfind('/');
            if (slash != std::string::npos) path = self.substr(0, slash + 1) + path;
        }
        backing_display_ = path;
        if (backing_depth >= kMaxBackingDepth)
            return invalid_argument("qcow2: backing chain deeper than " +
                                    std::to_string(kMaxBackingDepth) + " images");
        ++backing_depth;
        auto child = ctx.co_open_child(*this, "backing", kRoleBacking, path, /*probe_format=*/true,
                                       image_.extensions.backing_format.value_or(""));
        --backing_depth;
        if (!child.ok()) {
            Error e = std::move(child).error();
            e.message = "Could not open backing file: " + e.message;
            return e;
        }
        backing_ = *child;
    } else if (ctx.options().has("backing") || ctx.options().has_subtree("backing")) {
        auto child = ctx.co_open_child(*this, "backing", kRoleBacking, {}, /*probe_format=*/true);
        if (!child.ok()) return std::move(child).error();
        backing_ = *child;
    }

    mutable_limits().request_alignment = 1;
    mutable_limits().zero_alignment = cs;
    mutable_limits().discard_alignment = cs;
    set_supported_write_flags(kReqWriteCompressed);
    set_supported_zero_flags(kReqMayUnmap);

    dirty_ = (h.incompatible_features & qcow2::kIncompatDirty) != 0;
    if (!read_only) {
        // Unknown autoclear bits and bitmaps we do not maintain are dropped
        // by a header rewrite before the first write (qcow2-notes.md §3.4).
        const uint64_t clear = qcow2::autoclear_bits_to_clear(h, /*maintains_bitmaps=*/false);
        if (clear || image_.extensions.bitmaps) {
            image_.header.autoclear_features &= ~clear;
            image_.extensions.bitmaps.reset();
            TRY(rewrite_header());
        }
        // qemu-img check reports and repairs a dirty image itself.
        if (dirty_ && !ctx.flags().check) {
            // Refcounts on disk may lag (lazy refcounts and a crash): rebuild.
            CheckResult result;
            TRY(co_check(result, CheckFix::kAll));
            if (result.check_errors)
                return make_error(ErrorKind::kIo, "Could not repair dirty image");
            TRY(mark_clean());
        }
    }
    return {};
}

void Qcow2Node::rebuild_metadata_sets() {
    l2_clusters_.clear();
    refblock_clusters_.clear();
    for (uint64_t e : l1_) {
        const uint64_t off = e & qcow2::kL1OffsetMask;
        if (off) l2_clusters_.insert(off >> geom_.cluster_bits);
    }
    for (uint64_t off : reftable_)
        if (off) refblock_clusters_.insert(off >> geom_.cluster_bits);
}

Status Qcow2Node::check_overlap(uint32_t ignore, uint64_t offset, uint64_t length) {
    const uint32_t mask = overlap_mask_ & ~ignore;
    if (!mask || length == 0) return {};
    const uint64_t cs = geom_.cluster_size();
    const uint64_t first = offset / cs, last = (offset + length - 1) / cs;
    auto hits = [&](uint64_t start, uint64_t len) {
        if (len == 0) return false;
        const uint64_t s = start / cs, e = (start + len - 1) / cs;
        return !(e < first || s > last);
    };
    int bit = -1;
    const qcow2::Header& h = image_.header;
    if ((mask & kOverlapMainHeader) && first == 0)
        bit = 0;
    else if ((mask & kOverlapActiveL1) && hits(h.l1_table_offset, uint64_t{h.l1_size} * 8))
        bit = 1;
    else if ((mask & kOverlapRefcountTable) &&
             hits(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * cs))
        bit = 3;
    else if ((mask & kOverlapSnapshotTable) && hits(h.snapshots_offset, snapshot_table_bytes_))
        bit = 5;
    if (bit < 0 && (mask & kOverlapInactiveL1)) {
        for (const auto& s : snapshots_)
            if (hits(s.l1_table_offset, uint64_t{s.l1_size} * 8)) bit = 6;
    }
    if (bit < 0 && (mask & (kOverlapActiveL2 | kOverlapRefcountBlock))) {
        for (uint64_t c = first; c <= last && bit < 0; ++c) {
            if ((mask & kOverlapActiveL2) && l2_clusters_.count(c)) bit = 2;
            if ((mask & kOverlapRefcountBlock) && refblock_clusters_.count(c)) bit = 4;
        }
    }
    if (bit < 0) return {};
    return signal_corruption(std::string("Preventing invalid write on metadata (overlaps with ") +
                             kOverlapDescriptions[bit] + ")");
}

Error Qcow2Node::signal_corruption(const std::string& message) {
    if (read_only()) {
        if (!corruption_reported_)
            std::cerr << "qcow2: Image is corrupt: " << message
                      << "; further non-fatal corruption events will be suppressed\n";
        corruption_reported_ = true;
        return Error{ErrorKind::kCorrupt, EIO, "qcow2: " + message, std::nullopt};
    }
    if (!corruption_reported_)
        std::cerr << "qcow2: Marking image as corrupt: " << message
                  << "; further corruption events will be suppressed\n";
    corruption_reported_ = true;
    if (!unusable_) {
        unusable_ = true;
        corrupt_ = true;
        image_.header.incompatible_features |= qcow2::kIncompatCorrupt;
        std::byte word[8];
        store_be<uint64_t>(word, image_.header.incompatible_features);
        // Best effort: the node is unusable whatever happens here.
        (void)co_child_pwrite(file_, 72, word, 8);
        (void)co_child_flush(file_);
    }
    return Error{ErrorKind::kCorrupt, EIO, "qcow2: " + message, std::nullopt};
}

Status Qcow2Node::check_usable() const {
    if (unusable_)
        return Error{ErrorKind::kIo, ENOMEDIUM, "qcow2: image marked corrupt, node unusable",
                     std::nullopt};
    return {};
}

nlohmann::ordered_json Qcow2Node::info_specific() {
    const qcow2::Header& h = image_.header;
    nlohmann::ordered_json data = nlohmann::ordered_json::object();
    const char* ctype = h.compression_type == qcow2::kCompressionZstd ? "zstd" : "zlib";
    if (h.version == qcow2::kVersion2) {
        data["compat"] = "0.10";
        data["compression-type"] = ctype;
        data["refcount-bits"] = geom_.refcount_bits();
    } else {
        data["compat"] = "1.1";
        data["compression-type"] = ctype;
        data["lazy-refcounts"] = (h.compatible_features & qcow2::kCompatLazyRefcounts) != 0;
        data["refcount-bits"] = geom_.refcount_bits();
        data["corrupt"] = (h.incompatible_features & qcow2::kIncompatCorrupt) != 0;
        data["extended-l2"] = geom_.extended_l2;
    }
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    out["type"] = "qcow2";
    out["data"] = std::move(data);
    return out;
}

Status Qcow2Node::co_close() {
    if (read_only() || unusable_ || !file_) return {};
    CoMutexGuard guard(lock_);
    Status st = flush_caches(true);
    if (st.ok()) st = co_child_flush(file_);
    if (st.ok() && dirty_) st = mark_clean();
    return st;
}

Status Qcow2Node::co_reopen(const OpenFlags& flags) {
    if (flags.read_only && !read_only()) {
        CoMutexGuard guard(lock_);
        TRY(flush_caches(true));
        TRY(co_child_flush(file_));
        if (dirty_) TRY(mark_clean());
    } else if (!flags.read_only && read_only()) {
        if (image_.header.incompatible_features & qcow2::kIncompatCorrupt)
            return Error{ErrorKind::kPermission, EACCES,
                         "qcow2: Image is corrupt; cannot be opened read/write", std::nullopt};
    }
    return {};
}

const BlockDriver& qcow2_driver() {
    static const BlockDriver driver{.name = "qcow2",
                                    .kind = DriverKind::kFormat,
                                    .probe = probe_qcow2,
                                    .co_open = co_open_qcow2,
                                    .co_create = co_create_qcow2_image,
                                    .create_options = &qcow2_create_schema(),
                                    .supports_backing = true};
    return driver;
}

namespace {
void register_qcow2_driver() {
    register_block_driver(&qcow2_driver());
}
}  // namespace

}  // namespace coblock::qcow2drv

block_init(coblock::qcow2drv::register_qcow2_driver);
