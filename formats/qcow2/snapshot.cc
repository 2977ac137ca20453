// qcow2 snapshot table: scan, parse, encode, check-time validation.
// Pure. Implements specs/qcow2.txt "Snapshots" and qcow2-notes.md §18.
#include "formats/qcow2/snapshot.h"

#include <algorithm>

#include "formats/qcow2/constants.h"

namespace coblock::qcow2 {

namespace {

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

// Sizes taken from the fixed part of one entry.
struct EntrySizes {
    uint32_t extra = 0;
    uint16_t id = 0;
    uint16_t name = 0;
    uint64_t total() const { return kSnapshotFixedBytes + extra + id + name; }
};

EntrySizes entry_sizes(const std::byte* fixed) {
    return EntrySizes{load_be<uint32_t>(fixed + 36), load_be<uint16_t>(fixed + 12),
                      load_be<uint16_t>(fixed + 14)};
}

Status check_nb_snapshots(uint64_t nb_snapshots) {
    if (nb_snapshots > kMaxSnapshots) {
        return corrupt_error("qcow2: nb_snapshots " + u64s(nb_snapshots) + " exceeds limit " +
                             u64s(kMaxSnapshots));
    }
    return ok_status();
}

Status check_entry_limits(uint64_t index, const EntrySizes& sizes, uint64_t table_end) {
    if (sizes.extra > kMaxSnapshotExtraData) {
        return corrupt_error("qcow2: snapshot " + u64s(index) + " extra_data_size " +
                             u64s(sizes.extra) + " exceeds limit " + u64s(kMaxSnapshotExtraData));
    }
    if (table_end > kMaxSnapshotTableBytes) {
        return corrupt_error("qcow2: snapshot table size " + u64s(table_end) + " exceeds limit " +
                             u64s(kMaxSnapshotTableBytes));
    }
    return ok_status();
}

// Decodes the extra data the way QEMU reads it: whole known fields only.
void decode_extra(ByteSpan extra, SnapshotEntry* entry) {
    size_t pos = 0;
    std::optional<uint64_t>* fields[] = {&entry->vm_state_size_large, &entry->disk_size,
                                         &entry->icount};
    for (std::optional<uint64_t>* field : fields) {
        if (extra.size() - pos < 8) break;
        *field = load_be<uint64_t>(extra.data() + pos);
        pos += 8;
    }
    entry->unknown_extra.assign(extra.begin() + pos, extra.end());
}

}  // namespace

uint64_t snapshot_extra_data_size(const SnapshotEntry& entry) {
    return (entry.vm_state_size_large ? 8 : 0) + (entry.disk_size ? 8 : 0) +
           (entry.icount ? 8 : 0) + entry.unknown_extra.size();
}

Result<SnapshotTableScan> scan_snapshot_table(ByteSpan prefix, uint32_t nb_snapshots) {
    TRY(check_nb_snapshots(nb_snapshots));
    uint64_t pos = 0;
    for (uint32_t i = 0; i < nb_snapshots; ++i) {
        pos = align_up(pos, 8);
        if (prefix.size() < pos + kSnapshotFixedBytes) {
            return SnapshotTableScan{false, pos + kSnapshotFixedBytes};
        }
        const EntrySizes sizes = entry_sizes(prefix.data() + pos);
        // pos <= 64 MiB and an entry < 200 KiB: no overflow.
        pos += sizes.total();
        TRY(check_entry_limits(i, sizes, pos));
    }
    if (prefix.size() < pos) return SnapshotTableScan{false, pos};
    return SnapshotTableScan{true, pos};
}

Result<std::vector<SnapshotEntry>> parse_snapshot_table(ByteSpan table, uint32_t nb_snapshots) {
    TRY(check_nb_snapshots(nb_snapshots));
    std::vector<SnapshotEntry> entries;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < nb_snapshots; ++i) {
        pos = align_up(pos, 8);
        if (table.size() < pos + kSnapshotFixedBytes) {
            return corrupt_error("qcow2: snapshot table truncated at entry " + u64s(i) +
                                 " (offset " + u64s(pos) + " of " + u64s(table.size()) + ")");
        }
        ByteReader r(table.subspan(pos));
        SnapshotEntry e;
        e.l1_table_offset = r.be64();
        e.l1_size = r.be32();
        const uint16_t id_size = r.be16();
        const uint16_t name_size = r.be16();
        e.date_sec = r.be32();
        e.date_nsec = r.be32();
        e.vm_clock_nsec = r.be64();
        e.vm_state_size = r.be32();
        const uint32_t extra_size = r.be32();
        const EntrySizes sizes{extra_size, id_size, name_size};
        TRY(check_entry_limits(i, sizes, pos + sizes.total()));
        const ByteSpan extra = r.view(extra_size);
        const ByteSpan id = r.view(id_size);
        const ByteSpan name = r.view(name_size);
        if (!r.ok()) {
            return corrupt_error("qcow2: snapshot " + u64s(i) + " of " + u64s(sizes.total()) +
                                 " bytes truncated by the end of the table");
        }
        decode_extra(extra, &e);
        e.id.assign(reinterpret_cast<const char*>(id.data()), id.size());
        e.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
        entries.push_back(std::move(e));
        pos += sizes.total();
    }
    return entries;
}

Result<std::vector<std::byte>> encode_snapshot_table(std::span<const SnapshotEntry> entries) {
    if (entries.size() > kMaxSnapshots) {
        return invalid_argument("qcow2: " + u64s(entries.size()) + " snapshots exceed limit " +
                                u64s(kMaxSnapshots));
    }
    uint64_t total = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        const SnapshotEntry& e = entries[i];
        if (e.id.size() > 0xffff || e.name.size() > 0xffff) {
            return invalid_argument("qcow2: snapshot " + u64s(i) + " id or name longer than 65535");
        }
        const bool ordered = (!e.disk_size || e.vm_state_size_large) && (!e.icount || e.disk_size);
        const bool tail_ok = e.icount || e.unknown_extra.size() < 8;
        if (!ordered || !tail_ok) {
            return invalid_argument("qcow2: snapshot " + u64s(i) +
                                    " extra data fields are not a prefix of the known layout");
        }
        const uint64_t extra = snapshot_extra_data_size(e);
        if (extra > kMaxSnapshotExtraData) {
            return invalid_argument("qcow2: snapshot " + u64s(i) + " extra data " + u64s(extra) +
                                    " exceeds limit " + u64s(kMaxSnapshotExtraData));
        }
        total = align_up(total, 8) + kSnapshotFixedBytes + extra + e.id.size() + e.name.size();
        if (total > kMaxSnapshotTableBytes) {
            return invalid_argument("qcow2: snapshot table size " + u64s(total) +
                                    " exceeds limit " + u64s(kMaxSnapshotTableBytes));
        }
    }
    std::vector<std::byte> out(total);
    ByteWriter w(out);
    for (const SnapshotEntry& e : entries) {
        w.seek(align_up(w.position(), 8));
        w.be64(e.l1_table_offset);
        w.be32(e.l1_size);
        w.be16(static_cast<uint16_t>(e.id.size()));
        w.be16(static_cast<uint16_t>(e.name.size()));
        w.be32(e.date_sec);
        w.be32(e.date_nsec);
        w.be64(e.vm_clock_nsec);
        w.be32(e.vm_state_size);
        w.be32(static_cast<uint32_t>(snapshot_extra_data_size(e)));
        for (const auto& field : {e.vm_state_size_large, e.disk_size, e.icount}) {
            if (field) w.be64(*field);
        }
        // An empty vector's data() may be null, which memcpy must not see.
        if (!e.unknown_extra.empty()) w.bytes(e.unknown_extra.data(), e.unknown_extra.size());
        w.bytes(e.id.data(), e.id.size());
        w.bytes(e.name.data(), e.name.size());
    }
    if (!w.ok()) return make_error(ErrorKind::kInternal, "qcow2: snapshot encoder overran");
    return out;
}

Status validate_snapshot_entry(const SnapshotEntry& entry, const Geometry& geometry,
                               uint32_t version, uint64_t index) {
    const std::string label = "qcow2: snapshot " + u64s(index);
    if (!geometry.is_cluster_aligned(entry.l1_table_offset)) {
        return corrupt_error(label + " l1 table offset " + hex_string(entry.l1_table_offset) +
                             " is not cluster aligned");
    }
    if (entry.l1_size > kMaxL1Entries) {
        return corrupt_error(label + " l1_size " + u64s(entry.l1_size) + " exceeds limit " +
                             u64s(kMaxL1Entries));
    }
    if (version >= kVersion3 && !entry.disk_size) {
        return corrupt_error(label + " has " + u64s(snapshot_extra_data_size(entry)) +
                             " bytes of extra data, version 3 needs at least 16");
    }
    return ok_status();
}

}  // namespace coblock::qcow2
