// The internal snapshots and persistent bitmaps of a qcow2 image as
// qemu-img shows them: `info`'s
// "Snapshot list:" table and its JSON "snapshots" (SnapshotInfo), and the
// lookup `convert -l` does. Read from the image file with the pure parsers
// of formats/qcow2 (the driver keeps its table private).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "block/node.h"
#include "formats/qcow2/snapshot.h"
#include "formats/result.h"

namespace coblock::img {

// The snapshot table of `node` when it is a qcow2 node (empty for other
// formats and for images without snapshots). Errors name the structure.
Result<std::vector<qcow2::SnapshotEntry>> read_qcow2_snapshots(BlockNode* node);

// The "bitmaps" member of qemu-img's qcow2 format-specific data
// (Qcow2BitmapInfo list: name, granularity, flags "in-use"/"auto"), or
// null when the image has no valid bitmaps extension (autoclear bit 0
// clear), as qcow2_get_bitmap_info_list.
Result<nlohmann::ordered_json> read_qcow2_bitmaps_info(BlockNode* node);

// SnapshotInfo in the QAPI schema's member order (pass the enclosing
// ImageInfo through qdict_ordered for QEMU's output order).
nlohmann::ordered_json snapshot_info_json(const qcow2::SnapshotEntry& entry);

// bdrv_snapshot_dump of every entry of a JSON "snapshots" array, after the
// header line, each line ended by a newline (as bdrv_image_info_dump).
void print_snapshot_table(const nlohmann::ordered_json& snapshots);

// bdrv_snapshot_find_by_id_and_name / _by_id_or_name: with both set both
// must match; `id_or_name` matches either.
const qcow2::SnapshotEntry* find_snapshot(const std::vector<qcow2::SnapshotEntry>& entries,
                                          const std::optional<std::string>& id,
                                          const std::optional<std::string>& name);

}  // namespace coblock::img
