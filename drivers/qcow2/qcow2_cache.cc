// Metadata caches (L2 tables, refcount blocks) and their ordered write-back
// (QEMU's qcow2-cache.c dependencies, qcow2-notes.md §6).
#include <algorithm>

#include "block/io.h"
#include "drivers/qcow2/qcow2_node.h"

namespace coblock::qcow2drv {

MetaCache::Entry* MetaCache::find(uint64_t offset) {
    auto it = entries_.find(offset);
    if (it == entries_.end()) return nullptr;
    it->second->last_use = ++clock_;
    return it->second.get();
}

MetaCache::Entry* MetaCache::insert(uint64_t offset, std::vector<std::byte> data) {
    auto entry = std::make_unique<Entry>();
    entry->offset = offset;
    entry->data = std::move(data);
    entry->last_use = ++clock_;
    Entry* raw = entry.get();
    entries_[offset] = std::move(entry);
    return raw;
}

MetaCache::Entry* MetaCache::victim(uint64_t keep) {
    if (entries_.size() <= capacity_) return nullptr;
    Entry* best = nullptr;
    for (auto& [offset, entry] : entries_) {
        if (offset == keep) continue;
        if (!best || entry->last_use < best->last_use) best = entry.get();
    }
    return best;
}

std::vector<MetaCache::Entry*> MetaCache::dirty_entries() {
    std::vector<Entry*> out;
    for (auto& [offset, entry] : entries_)
        if (entry->dirty) out.push_back(entry.get());
    std::sort(out.begin(), out.end(), [](Entry* a, Entry* b) { return a->offset < b->offset; });
    return out;
}

bool MetaCache::any_dirty() const {
    for (const auto& [offset, entry] : entries_)
        if (entry->dirty) return true;
    return false;
}

void AllocRanges::co_acquire(uint64_t start, uint64_t end) {
    for (;;) {
        bool overlap = false;
        for (const auto& [s, e] : active_)
            if (start < e && s < end) overlap = true;
        if (!overlap) break;
        waiters_.co_wait();
    }
    active_.emplace_back(start, end);
}

void AllocRanges::release(uint64_t start, uint64_t end) {
    for (auto it = active_.begin(); it != active_.end(); ++it) {
        if (it->first == start && it->second == end) {
            active_.erase(it);
            break;
        }
    }
    waiters_.wake_all();
}

// ---- dependencies ----------------------------------------------------------

Status Qcow2Node::set_l2_depends_on_refcount() {
    // In lazy-refcount mode L2 tables never wait for refcount blocks.
    if (lazy_refcounts_) return {};
    // As QEMU's qcow2_cache_set_dependency: when refcount blocks already
    // wait for L2 tables (a free), write them back first (after the L2
    // tables they wait for). Otherwise the two caches would wait on each
    // other and the L2 write-back, reached again from the refcount
    // write-back, would write an L2 table before the refcount block that
    // counts its new clusters (found by the crash test).
    if (refcount_depends_on_l2_) TRY(flush_refcount_cache());
    l2_depends_on_refcount_ = true;
    return {};
}

Status Qcow2Node::set_refcount_depends_on_l2() {
    // QEMU's qcow2_cache_set_dependency: a dependency that itself depends on
    // something is resolved first, so the two never wait on each other. The
    // refcount blocks are made durable here and the L2 dependency dropped:
    // left set, a later refcount write-back would reach the L2 write-back,
    // which would write the refcount blocks again (showing the lower counts)
    // before the L2 tables that dropped the references.
    if (l2_depends_on_refcount_) {
        TRY(flush_refcount_cache());
        TRY(co_child_flush(file_));
        l2_depends_on_refcount_ = false;
        l2_depends_on_flush_ = false;
    }
    refcount_depends_on_l2_ = true;
    return {};
}

Status Qcow2Node::prepare_l2_writeback() {
    if (l2_depends_on_refcount_) {
        l2_depends_on_refcount_ = false;
        TRY(flush_refcount_cache());
        TRY(co_child_flush(file_));
        l2_depends_on_flush_ = false;
    }
    if (l2_depends_on_flush_) {
        // New guest data must be stable before a table pointing at it.
        l2_depends_on_flush_ = false;
        TRY(co_child_flush(file_));
    }
    return {};
}

Status Qcow2Node::prepare_refcount_writeback() {
    if (refcount_depends_on_l2_) {
        refcount_depends_on_l2_ = false;
        TRY(flush_l2_cache());
        TRY(co_child_flush(file_));
    }
    return {};
}

Status Qcow2Node::write_cache_entry(MetaCache& cache, MetaCache::Entry* entry, bool is_l2) {
    if (!entry->dirty) return {};
    const uint64_t offset = entry->offset;
    if (is_l2) {
        TRY(prepare_l2_writeback());
        ::coblock::co_debug_event(file_, BlkdebugEvent::kL2Update);
    } else {
        TRY(prepare_refcount_writeback());
        ::coblock::co_debug_event(file_, BlkdebugEvent::kRefblockUpdatePart);
    }
    // The flushes above may have yielded; the entry is still cached because
    // only the lock holder evicts.
    entry = cache.find(offset);
    if (!entry || !entry->dirty) return {};
    TRY(check_overlap(is_l2 ? kOverlapActiveL2 : kOverlapRefcountBlock, offset,
                      entry->data.size()));
    std::vector<std::byte> copy = entry->data;
    entry->dirty = false;
    Status st = co_child_pwrite(file_, offset, copy.data(), copy.size());
    if (!st.ok()) {
        if (auto* e = cache.find(offset)) e->dirty = true;
        return st;
    }
    return {};
}

Status Qcow2Node::flush_l2_cache() {
    for (MetaCache::Entry* entry : l2_cache_.dirty_entries()) {
        if (!l2_cache_.find(entry->offset)) continue;
        TRY(write_cache_entry(l2_cache_, entry, true));
    }
    return {};
}

Status Qcow2Node::flush_refcount_cache() {
    for (MetaCache::Entry* entry : refcount_cache_.dirty_entries()) {
        if (!refcount_cache_.find(entry->offset)) continue;
        TRY(write_cache_entry(refcount_cache_, entry, false));
    }
    return {};
}

Status Qcow2Node::flush_caches(bool include_refcounts) {
    TRY(flush_l2_cache());
    if (include_refcounts) TRY(flush_refcount_cache());
    // Refcount write-back may have needed the L2 cache again.
    TRY(flush_l2_cache());
    return {};
}

Result<MetaCache::Entry*> Qcow2Node::cache_get(MetaCache& cache, uint64_t offset, bool load,
                                               bool is_l2) {
    if (MetaCache::Entry* hit = cache.find(offset)) return hit;
    std::vector<std::byte> data(is_l2 ? l2_slice_bytes() : geom_.cluster_size());
    if (load) {
        // A table that starts past the end of the file would read as zeros
        // (QEMU's behaviour): refuse it by name instead.
        const uint64_t file_size = file_->node()->size();
        if (offset >= file_size)
            return corrupt_error(std::string("qcow2: ") + (is_l2 ? "L2 table" : "refcount block") +
                                     " at " + qcow2::hex_string(offset) +
                                     " starts beyond the end of the file (" +
                                     std::to_string(file_size) + " bytes)",
                                 offset);
        // Refcount block misses raise nothing here: QEMU raises
        // refblock_load per lookup (update_refcount).
        if (is_l2) ::coblock::co_debug_event(file_, BlkdebugEvent::kL2Load);
        TRY(co_child_pread(file_, offset, data.data(), data.size()));
        if (MetaCache::Entry* raced = cache.find(offset)) return raced;
    }
    cache.insert(offset, std::move(data));
    // Evict least recently used entries beyond the capacity.
    while (MetaCache::Entry* victim = cache.victim(offset)) {
        const uint64_t victim_offset = victim->offset;
        TRY(write_cache_entry(cache, victim, is_l2));
        cache.erase(victim_offset);
    }
    MetaCache::Entry* entry = cache.find(offset);
    if (!entry) return make_error(ErrorKind::kInternal, "qcow2: cache entry vanished");
    return entry;
}

Result<MetaCache::Entry*> Qcow2Node::load_l2_slice(uint64_t l2_offset, uint64_t l2_index) {
    return cache_get(l2_cache_, l2_offset + (l2_index / l2_slice_entries_) * l2_slice_bytes(), true,
                     true);
}

Status Qcow2Node::read_l2_table(uint64_t l2_offset, std::vector<std::byte>& table) {
    const uint64_t cs = geom_.cluster_size();
    table.assign(cs, std::byte{0});
    TRY(read_file_padded(l2_offset, table.data(), cs));
    const uint64_t slice = l2_slice_bytes();
    for (uint64_t pos = 0; pos < cs; pos += slice)
        if (MetaCache::Entry* cached = l2_cache_.find(l2_offset + pos))
            std::copy(cached->data.begin(), cached->data.end(), table.begin() + pos);
    return {};
}

void Qcow2Node::drop_l2_table(uint64_t l2_offset) {
    const uint64_t cs = geom_.cluster_size();
    const uint64_t slice = l2_slice_bytes();
    for (uint64_t pos = 0; pos < cs; pos += slice)
        l2_cache_.erase(l2_offset + pos);
}

Result<MetaCache::Entry*> Qcow2Node::load_refblock(uint64_t offset) {
    return cache_get(refcount_cache_, offset, true, false);
}

}  // namespace coblock::qcow2drv
