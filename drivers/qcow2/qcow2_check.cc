// `qemu-img check` for qcow2 (qcow2-notes.md §14): recount every reference
// from the header, the active and snapshot L1/L2 tables, the refcount
// structures and the snapshot table; compare with the stored refcounts;
// report (and with `fix`, repair) leaks, refcounts that are too low and
// wrong COPIED flags; fill the allocation statistics.
// Not counted: persistent bitmap clusters (coblock drops bitmaps on its
// first read-write open; their clusters then show as leaks, as in QEMU).
#include <cinttypes>
#include <cstdio>

#include "block/io.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/refcount.h"

namespace coblock::qcow2drv {

using qcow2::hex_string;

namespace {

struct RefCounter {
    uint64_t cs;
    uint32_t bits;
    uint64_t file_clusters;
    std::vector<uint64_t> refs;
    CheckResult* result;

    void inc(uint64_t offset, uint64_t length) {
        if (length == 0) return;
        const uint64_t first = offset >> bits;
        const uint64_t last = (offset + length - 1) >> bits;
        if (last >= file_clusters) {
            std::fprintf(stderr,
                         "ERROR: counting reference for region exceeding the end of the file by "
                         "one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64 "\n",
                         offset, length);
            result->corruptions++;
            return;
        }
        if (refs.size() <= last) refs.resize(last + 1, 0);
        for (uint64_t c = first; c <= last; ++c)
            refs[c]++;
    }
};

}  // namespace

Status Qcow2Node::co_check(CheckResult& result, CheckFix fix) {
    AllocRangeGuard alloc(alloc_ranges_, 0, kWholeDisk);
    CoMutexGuard guard(lock_);
    const uint64_t cs = geom_.cluster_size();
    const qcow2::Header& h = image_.header;
    const uint64_t file_size = file_->node()->size();
    RefCounter rc{cs, geom_.cluster_bits, div_round_up(file_size, cs), {}, &result};
    rc.refs.resize(rc.file_clusters, 0);
    result.total_clusters = static_cast<int64_t>(div_round_up(size(), cs));
    const qcow2::L2Context l2ctx{h.version, false};

    rc.inc(0, cs);
    // One L1 table (active or a snapshot's): its clusters, its L2 tables,
    // their data clusters. Statistics only for the active one.
    auto walk_l1 = [&](const std::vector<uint64_t>& l1, bool active) -> Status {
        for (uint64_t i = 0; i < l1.size(); ++i) {
            const uint64_t l2off = l1[i] & qcow2::kL1OffsetMask;
            if (!l2off) continue;
            if (!geom_.is_cluster_aligned(l2off)) {
                std::fprintf(stderr,
                             "ERROR l2_offset=%" PRIx64
                             ": Table is not cluster aligned; L1 "
                             "entry corrupted\n",
                             l2off);
                result.corruptions++;
                continue;
            }
            rc.inc(l2off, cs);
            if (l2off + cs > align_up(file_size, cs)) continue;
            std::vector<std::byte> table;
            TRY(read_l2_table(l2off, table));
            uint64_t next_contiguous = 0;
            for (uint64_t j = 0; j < geom_.l2_entries(); ++j) {
                ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                                 qcow2::read_l2_entry(table, j, geom_.extended_l2));
                const qcow2::L2Entry e = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
                if (e.compressed) {
                    const qcow2::ClusterRange r = qcow2::compressed_host_clusters(e, geom_);
                    rc.inc(r.first * cs, (r.last - r.first + 1) * cs);
                    if (active) {
                        result.allocated_clusters++;
                        result.compressed_clusters++;
                        result.fragmented_clusters++;
                    }
                    continue;
                }
                if (e.host_offset == 0) continue;
                if (!qcow2::validate_l2_entry(e, geom_, l2ctx, j).ok() &&
                    !geom_.is_cluster_aligned(e.host_offset)) {
                    std::fprintf(stderr,
                                 "ERROR offset=%" PRIx64
                                 ": Cluster is not properly aligned; L2 "
                                 "entry corrupted.\n",
                                 e.host_offset);
                    result.corruptions++;
                    continue;
                }
                rc.inc(e.host_offset, cs);
                if (active) {
                    result.allocated_clusters++;
                    if (next_contiguous && e.host_offset != next_contiguous)
                        result.fragmented_clusters++;
                    next_contiguous = e.host_offset + cs;
                }
            }
        }
        return {};
    };

    rc.inc(h.l1_table_offset, uint64_t{h.l1_size} * 8);
    TRY(walk_l1(l1_, true));
    for (const auto& s : snapshots_) {
        // QEMU's calculate_refcounts: a snapshot whose L1 table is
        // misaligned or too large is counted as corrupt and not walked (a
        // hostile l1_size would otherwise make us read up to 32 GiB).
        if (s.l1_table_offset % cs != 0) {
            std::fprintf(stderr,
                         "ERROR snapshot %s (%s) l1_offset=%#" PRIx64
                         ": L1 table is not cluster aligned; snapshot table entry corrupted\n",
                         s.id.c_str(), s.name.c_str(), s.l1_table_offset);
            result.corruptions++;
            continue;
        }
        if (s.l1_size > qcow2::kMaxL1Entries) {
            std::fprintf(stderr,
                         "ERROR snapshot %s (%s) l1_size=%#" PRIx32
                         ": L1 table is too large; snapshot table entry corrupted\n",
                         s.id.c_str(), s.name.c_str(), s.l1_size);
            result.corruptions++;
            continue;
        }
        rc.inc(s.l1_table_offset, uint64_t{s.l1_size} * 8);
        std::vector<std::byte> bytes(uint64_t{s.l1_size} * 8);
        TRY(read_file_padded(s.l1_table_offset, bytes.data(), bytes.size()));
        ASSIGN_OR_RETURN(std::vector<uint64_t> l1,
                         qcow2::decode_be64_table(bytes, s.l1_size, "snapshot l1 table"));
        TRY(walk_l1(l1, false));
    }
    if (h.nb_snapshots) rc.inc(h.snapshots_offset, snapshot_table_bytes_);
    rc.inc(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * cs);
    for (uint64_t i = 0; i < reftable_.size(); ++i) {
        if (!reftable_[i]) continue;
        if (reftable_[i] >= align_up(file_size, cs)) {
            std::fprintf(stderr, "ERROR refcount block %" PRIu64 " is outside image\n", i);
            result.corruptions++;
            continue;
        }
        rc.inc(reftable_[i], cs);
    }

    // Compare.
    const uint64_t entries = geom_.refcount_block_entries();
    const uint64_t covered = reftable_.size() * entries;
    const uint64_t limit = std::max<uint64_t>(rc.refs.size(), 0);
    int64_t highest = -1;
    // QEMU's compare_refcounts: a used cluster with refcount 0 needs the
    // refcount structures rebuilt, which only -r all does; -r leaks then
    // fails the check (after reporting) and repairs nothing.
    bool rebuild = false;
    const uint64_t end = std::max<uint64_t>(limit, std::min<uint64_t>(covered, rc.file_clusters));
    if (fix != CheckFix::kNone) {
        // When repairing, QEMU's qcow2_check_refcounts compares twice: a
        // first pass only reports ("Leaked" / "ERROR"), the second repairs.
        for (uint64_t i = 0; i < end; ++i) {
            const uint64_t ref = i < rc.refs.size() ? rc.refs[i] : 0;
            ASSIGN_OR_RETURN(uint64_t stored, get_refcount(i));
            if (stored == ref) continue;
            if (stored == 0) rebuild = true;
            std::fprintf(stderr,
                         "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
                         stored > ref ? "Leaked" : "ERROR", i, stored, ref);
        }
        // Repairing leaks only cannot help a used cluster whose refcount is
        // 0: QEMU stops here, before the second pass writes anything.
        if (rebuild && fix == CheckFix::kLeaks) {
            std::fprintf(stderr, "ERROR need to rebuild refcount structures\n");
            result.check_errors++;
            return Error{ErrorKind::kIo, EIO, "qcow2: need to rebuild refcount structures",
                         std::nullopt};
        }
    }
    for (uint64_t i = 0; i < end; ++i) {
        const uint64_t ref = i < rc.refs.size() ? rc.refs[i] : 0;
        ASSIGN_OR_RETURN(uint64_t stored, get_refcount(i));
        if (ref > 0 || stored > 0) highest = static_cast<int64_t>(i);
        if (stored == ref) continue;
        const bool leak = stored > ref;
        const bool repair = leak ? fix != CheckFix::kNone : fix == CheckFix::kAll;
        std::fprintf(stderr, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
                     repair ? "Repairing" : (leak ? "Leaked" : "ERROR"), i, stored, ref);
        if (!repair) {
            if (leak)
                result.leaks++;
            else
                result.corruptions++;
            continue;
        }
        const uint64_t t = i / entries;
        if (t >= reftable_.size() || reftable_[t] == 0) {
            // A new block goes to the first cluster of its range, which must
            // not be in use (ensure_refblock assumes an empty range).
            const uint64_t home = t * entries;
            if (home < rc.refs.size() && rc.refs[home] != 0) {
                std::fprintf(stderr,
                             "ERROR cannot allocate refcount block %" PRIu64
                             ": need to rebuild refcount structures\n",
                             t);
                result.check_errors++;
                continue;
            }
            bool created = false;
            if (!ensure_refblock(t, &created).ok()) {
                result.check_errors++;
                continue;
            }
        }
        ASSIGN_OR_RETURN(MetaCache::Entry * block, load_refblock(reftable_[t]));
        if (Status st = qcow2::set_refcount(block->data, i % entries, geom_.refcount_order,
                                            std::min(ref, geom_.refcount_max()));
            !st.ok()) {
            result.check_errors++;
            continue;
        }
        block->dirty = true;
        if (leak)
            result.leaks_fixed++;
        else
            result.corruptions_fixed++;
    }

    // COPIED flags of the active tables (refcount 1 <=> flag).
    for (uint64_t i = 0; i < l1_.size(); ++i) {
        const uint64_t l2off = l1_[i] & qcow2::kL1OffsetMask;
        if (!l2off || !geom_.is_cluster_aligned(l2off)) continue;
        ASSIGN_OR_RETURN(uint64_t r, get_refcount(l2off >> geom_.cluster_bits));
        const bool copied = (l1_[i] & qcow2::kCopiedFlag) != 0;
        if ((r == 1) != copied) {
            std::fprintf(stderr,
                         "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu64 " l1_entry=%" PRIx64
                         " refcount=%" PRIu64 "\n",
                         fix == CheckFix::kAll ? "Repairing" : "ERROR", i, l1_[i], r);
            if (fix == CheckFix::kAll) {
                l1_[i] = r == 1 ? (l1_[i] | qcow2::kCopiedFlag) : (l1_[i] & ~qcow2::kCopiedFlag);
                TRY(write_l1_entry(i));
                result.corruptions_fixed++;
            } else {
                result.corruptions++;
            }
        }
        if (l2off + cs > align_up(file_size, cs)) continue;
        for (uint64_t j = 0; j < geom_.l2_entries(); ++j) {
            ASSIGN_OR_RETURN(MetaCache::Entry * table, load_l2_slice(l2off, j));
            const uint64_t js = j % l2_slice_entries_;
            ASSIGN_OR_RETURN(qcow2::RawL2Entry raw,
                             qcow2::read_l2_entry(table->data, js, geom_.extended_l2));
            const qcow2::L2Entry e = qcow2::decode_l2_entry(raw.word, raw.bitmap, geom_);
            if (e.compressed || e.host_offset == 0 || !geom_.is_cluster_aligned(e.host_offset))
                continue;
            ASSIGN_OR_RETURN(uint64_t dr, get_refcount(e.host_offset >> geom_.cluster_bits));
            if ((dr == 1) != e.copied) {
                std::fprintf(stderr,
                             "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64
                             "\n",
                             fix == CheckFix::kAll ? "Repairing" : "ERROR", raw.word, dr);
                if (fix == CheckFix::kAll) {
                    raw.word = dr == 1 ? (raw.word | qcow2::kCopiedFlag)
                                       : (raw.word & ~qcow2::kCopiedFlag);
                    TRY(qcow2::write_l2_entry(table->data, js, geom_.extended_l2, raw));
                    table->dirty = true;
                    result.corruptions_fixed++;
                } else {
                    result.corruptions++;
                }
            }
        }
    }

    if (fix != CheckFix::kNone) {
        // Repairs bypass the usual dependencies: write everything, in order.
        l2_depends_on_refcount_ = refcount_depends_on_l2_ = false;
        TRY(flush_refcount_cache());
        TRY(co_child_flush(file_));
        TRY(flush_l2_cache());
        TRY(co_child_flush(file_));
        free_cluster_index_ = 0;
        // As QEMU: a repair that leaves no corruption marks the image clean
        // and consistent.
        if (result.corruptions == 0 && result.check_errors == 0 && dirty_ && !read_only())
            TRY(mark_clean());
        if (result.corruptions == 0 && result.check_errors == 0 &&
            (image_.header.incompatible_features & qcow2::kIncompatCorrupt) && !read_only()) {
            image_.header.incompatible_features &= ~qcow2::kIncompatCorrupt;
            std::byte word[8];
            store_be<uint64_t>(word, image_.header.incompatible_features);
            TRY(write_header_field(72, word, 8));
            corrupt_ = false;
        }
    }
    result.image_end_offset = static_cast<int64_t>((highest + 1) * cs);
    return {};
}

}  // namespace coblock::qcow2drv
