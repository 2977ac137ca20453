// qcow2 internal snapshots for info and convert -l: header, then the
// snapshot table (scanned in growing prefixes, since its length is only in
// its entries), then QEMU's SnapshotInfo and bdrv_snapshot_dump formats.
#include "tools/img/qcow2_snapshots.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "block/io.h"
#include "coroutine/run_sync.h"
#include "formats/qcow2/bitmap_directory.h"
#include "formats/qcow2/constants.h"
#include "formats/qcow2/header.h"
#include "formats/qcow2/image_header.h"
#include "tools/img/options.h"

namespace coblock::img {
namespace {

Status read_bytes(BdrvChild* file, uint64_t offset, std::vector<std::byte>& buf) {
    return run_sync([&] {
        const uint64_t size = file->node()->size();
        const uint64_t bytes = offset >= size ? 0 : std::min<uint64_t>(buf.size(), size - offset);
        std::fill(buf.begin(), buf.end(), std::byte{0});
        if (bytes == 0) return Status{};
        return co_child_pread(file, offset, buf.data(), bytes);
    });
}

}  // namespace

Result<std::vector<qcow2::SnapshotEntry>> read_qcow2_snapshots(BlockNode* node) {
    std::vector<qcow2::SnapshotEntry> none;
    if (node->driver().name != "qcow2" || node->file() == nullptr) return none;
    BdrvChild* file = node->file();
    std::vector<std::byte> head(512);
    TRY(read_bytes(file, 0, head));
    ASSIGN_OR_RETURN(qcow2::Header header, qcow2::decode_header(head));
    if (header.nb_snapshots == 0) return none;
    std::vector<std::byte> table(4096);
    for (;;) {
        TRY(read_bytes(file, header.snapshots_offset, table));
        ASSIGN_OR_RETURN(qcow2::SnapshotTableScan scan,
                         qcow2::scan_snapshot_table(table, header.nb_snapshots));
        if (scan.complete) break;
        // scan_snapshot_table bounds the table (64 MiB), so this ends.
        table.resize(std::max<uint64_t>(scan.bytes, table.size() * 2));
    }
    return qcow2::parse_snapshot_table(table, header.nb_snapshots);
}

Result<nlohmann::ordered_json> read_qcow2_bitmaps_info(BlockNode* node) {
    if (node->driver().name != "qcow2" || node->file() == nullptr) return nlohmann::ordered_json();
    BdrvChild* file = node->file();
    std::vector<std::byte> head(512);
    TRY(read_bytes(file, 0, head));
    ASSIGN_OR_RETURN(qcow2::Header header, qcow2::decode_header(head));
    if (!(header.autoclear_features & qcow2::kAutoclearBitmaps)) return nlohmann::ordered_json();
    std::vector<std::byte> cluster0(uint64_t{1} << header.cluster_bits);
    TRY(read_bytes(file, 0, cluster0));
    ASSIGN_OR_RETURN(qcow2::ImageHeader image, qcow2::parse_image_header(cluster0));
    if (!image.extensions.bitmaps || image.extensions.bitmaps->nb_bitmaps == 0)
        return nlohmann::ordered_json();
    const qcow2::BitmapsExtension& ext = *image.extensions.bitmaps;
    // parse_image_header bounded the directory (64 MiB - 1 KiB).
    std::vector<std::byte> directory(ext.bitmap_directory_size);
    TRY(read_bytes(file, ext.bitmap_directory_offset, directory));
    ASSIGN_OR_RETURN(std::vector<qcow2::BitmapDirectoryEntry> entries,
                     qcow2::parse_bitmap_directory(directory, ext.nb_bitmaps));
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const qcow2::BitmapDirectoryEntry& entry : entries) {
        nlohmann::ordered_json info = nlohmann::ordered_json::object();
        info["name"] = entry.name;
        info["granularity"] = uint64_t{1} << (entry.granularity_bits & 63);
        nlohmann::ordered_json flags = nlohmann::ordered_json::array();
        if (entry.flags & qcow2::kBitmapFlagInUse) flags.push_back("in-use");
        if (entry.flags & qcow2::kBitmapFlagAuto) flags.push_back("auto");
        info["flags"] = std::move(flags);
        list.push_back(std::move(info));
    }
    return list;
}

nlohmann::ordered_json snapshot_info_json(const qcow2::SnapshotEntry& entry) {
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    info["id"] = entry.id;
    info["name"] = entry.name;
    info["vm-state-size"] = qcow2::snapshot_vm_state_size(entry);
    info["date-sec"] = entry.date_sec;
    info["date-nsec"] = entry.date_nsec;
    info["vm-clock-sec"] = entry.vm_clock_nsec / 1000000000;
    info["vm-clock-nsec"] = entry.vm_clock_nsec % 1000000000;
    // ~0 means icount was off: QEMU leaves the member out.
    if (entry.icount && *entry.icount != ~uint64_t{0}) info["icount"] = *entry.icount;
    return info;
}

void print_snapshot_table(const nlohmann::ordered_json& snapshots) {
    std::printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
                "ICOUNT");
    for (const nlohmann::ordered_json& sn : snapshots) {
        // QEMUSnapshotInfo holds id_str[128] and name[256] (pstrcpy).
        const std::string id = sn["id"].get<std::string>().substr(0, 127);
        const std::string name = sn["name"].get<std::string>().substr(0, 255);
        const time_t date = static_cast<time_t>(sn["date-sec"].get<int64_t>());
        struct tm tm {};
        localtime_r(&date, &tm);
        char date_buf[128];
        std::strftime(date_buf, sizeof date_buf, "%Y-%m-%d %H:%M:%S", &tm);
        const uint64_t secs = sn["vm-clock-sec"].get<uint64_t>();
        const uint64_t nsec = sn["vm-clock-nsec"].get<uint64_t>();
        char clock_buf[128];
        std::snprintf(clock_buf, sizeof clock_buf, "%02d:%02d:%02d.%03d",
                      static_cast<int>(secs / 3600), static_cast<int>((secs / 60) % 60),
                      static_cast<int>(secs % 60), static_cast<int>((nsec / 1000000) % 1000));
        char icount_buf[32] = "";
        if (sn.contains("icount"))
            std::snprintf(icount_buf, sizeof icount_buf, "%" PRId64,
                          static_cast<int64_t>(sn["icount"].get<uint64_t>()));
        std::printf("%-9s %-16s %8s%20s%13s%11s\n", id.c_str(), name.c_str(),
                    size_to_str(sn["vm-state-size"].get<uint64_t>()).c_str(), date_buf, clock_buf,
                    icount_buf);
    }
}

const qcow2::SnapshotEntry* find_snapshot(const std::vector<qcow2::SnapshotEntry>& entries,
                                          const std::optional<std::string>& id,
                                          const std::optional<std::string>& name) {
    for (const qcow2::SnapshotEntry& entry : entries) {
        if (id && name) {
            if (entry.id == *id && entry.name == *name) return &entry;
        } else if (id) {
            if (entry.id == *id) return &entry;
        } else if (name) {
            if (entry.name == *name) return &entry;
        }
    }
    return nullptr;
}

}  // namespace coblock::img
