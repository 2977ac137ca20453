// Where the tables a qcow2 header points at may lie: the header cluster, the
// active L1 table and the refcount table must not overlap each other, and
// each must start inside the image file. Pure. QEMU reads tables past the
// end of the file as zeros and finds overlaps only when it writes; we refuse
// such an image at open with an error naming both structures, because every
// later lookup through it would read garbage (qcow2.txt "Header",
// qcow2-notes.md §9).
#pragma once

#include <cstdint>

#include "formats/qcow2/header.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// `header` passed validate_header (offsets aligned, sizes within limits).
// Fails with kCorrupt: "qcow2: L1 table at 0x40000000 (8 bytes) starts
// beyond the end of the file (16384 bytes)" or "qcow2: L1 table [0x1000,
// +0x8) overlaps refcount table [0x1000, +0x1000)". Empty tables (l1_size 0)
// are not checked.
Status check_table_placement(const Header& header, uint64_t file_size);

}  // namespace coblock::qcow2
