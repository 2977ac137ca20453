// Umbrella header of the pure VHDX decoders/encoders, and the order a
// driver opens an image in (spec vhdx.md §15: signature, headers, log,
// region table, metadata, BAT). Pure: every step is bytes in, plan out.
//
//  1. Read kHeaderSectionReadSize bytes at 0. parse_file_identifier;
//     select_header(slot at kHeader1Offset, slot at kHeader2Offset).
//  2. If header.log_guid is set: read log_length bytes at log_offset;
//     plan_log_replay; apply its writes (or overlay them, read-only), extend
//     the file to extend_file_to, flush, clear the log GUID with
//     plan_header_update. Every later read goes through the replayed view.
//  3. select_region_table(copies at 192 KiB and 256 KiB); classify_regions;
//     check_extents(image_extents(header, regions), file_size).
//  4. Read kMetadataTableSize bytes at the metadata region;
//     parse_metadata_table; plan_metadata_item_reads; read them;
//     parse_image_metadata; for a parent: decode_vhdx_parent_locator.
//  5. compute_bat_geometry; check_bat_region_length; read table_bytes() of
//     the BAT region; check_bat(geometry, bat, file_size, extents).
//  6. Per request: locate_virtual_offset, read_bat_entry.
// Writers: build_log_entry + place_log_entry for metadata updates,
// plan_header_update for headers, build_image_layout for creation.
#pragma once

#include "formats/crc32c.h"
#include "formats/vhdx/bat.h"
#include "formats/vhdx/common.h"
#include "formats/vhdx/extents.h"
#include "formats/vhdx/guid.h"
#include "formats/vhdx/header.h"
#include "formats/vhdx/layout.h"
#include "formats/vhdx/log.h"
#include "formats/vhdx/log_replay.h"
#include "formats/vhdx/metadata.h"
#include "formats/vhdx/parent_locator.h"
#include "formats/vhdx/region_table.h"
