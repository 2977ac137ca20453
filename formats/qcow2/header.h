// qcow2 fixed header (versions 2 and 3): decoded struct, parser, validator,
// encoder and the read plan it yields. Pure: bytes in, values out.
// Implements specs/qcow2.txt "Header" and specs/qcow2-notes.md §2 items 1-18.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow2/constants.h"
#include "formats/qcow2/geometry.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// Every field of the fixed header. For version 2 the v3-only fields hold the
// values the spec implies (features 0, refcount_order 4, header_length 72,
// compression deflate) and the encoder requires exactly those.
struct Header {
    uint32_t version = kVersion3;
    uint64_t backing_file_offset = 0;  // 0: no backing file
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 16;
    uint64_t size = 0;  // virtual disk size in bytes, as stored
    uint32_t crypt_method = kCryptNone;
    uint32_t l1_size = 0;
    uint64_t l1_table_offset = 0;
    uint64_t refcount_table_offset = 0;
    uint32_t refcount_table_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    // Version 3 fields.
    uint64_t incompatible_features = 0;
    uint64_t compatible_features = 0;
    uint64_t autoclear_features = 0;
    uint32_t refcount_order = kDefaultRefcountOrder;
    uint32_t header_length = kHeaderV3QemuLength;
    uint8_t compression_type = kCompressionDeflate;  // present iff header_length > 104
    // Bytes [112, header_length): fields of later versions, kept verbatim and
    // written back on every header rewrite, as QEMU does. Bytes 105..111 are
    // padding (spec: zero) and are not kept.
    std::vector<std::byte> unknown_fields;

    bool operator==(const Header&) const = default;
};

struct HeaderParseOptions {
    // `qemu-img check` mode: tolerate refcount_table_clusters == 0 and skip the
    // snapshot table checks, so a damaged image can still be examined.
    bool check_mode = false;
};

// Bytes a caller must read before probe_cluster_size() can answer.
inline constexpr size_t kHeaderProbeBytes = 24;

// First step of opening: from the first kHeaderProbeBytes of the file checks
// magic, version and cluster_bits and returns the cluster size, i.e. how many
// bytes of cluster 0 the driver must read next (zero-padded past EOF).
Result<uint64_t> probe_cluster_size(ByteSpan prefix);

// Decodes the fixed header from the start of cluster 0 with the structural
// checks that the rest of the decode depends on: magic, version 2 or 3
// (kUnsupported otherwise), cluster_bits 9..21, v3 header_length in
// 104..cluster_size, `bytes` holding header_length bytes, and
// backing_file_offset either 0 or in [header_length, cluster_size]. Does not
// look at feature bits or table pointers (see validate_header).
Result<Header> decode_header(ByteSpan bytes);

// The remaining open-time checks, in QEMU's order: compression_type against
// incompatible bit 3, extended L2 needing cluster_bits >= 14, refcount_order
// <= 6, crypt_method 0 (coblock implements no encryption yet: kUnsupported),
// raw data file bit only with a data file, a backing file name of at most
// 1023 bytes inside cluster 0, then the refcount table, snapshot
// table and L1 table extents and limits, and that l1_size covers `size`.
// Unknown incompatible bits are NOT checked here (see unknown_incompatible_
// features and the named message in image_header.h).
Status validate_header(const Header& header, const HeaderParseOptions& options = {});

// decode_header + refusal of unknown incompatible bits (message without
// names, as no feature table is available) + validate_header.
Result<Header> parse_header(ByteSpan bytes, const HeaderParseOptions& options = {});

// Incompatible bits set in the header that this implementation does not know.
inline uint64_t unknown_incompatible_features(const Header& header) {
    return header.incompatible_features & ~kIncompatKnownMask;
}

// Bytes the encoder writes: 72 for v2, header_length for v3.
inline uint32_t encoded_header_size(const Header& header) {
    return header.version == kVersion2 ? kHeaderV2Length : header.header_length;
}

// Writes the fixed header (encoded_header_size bytes) at the start of `out`.
// Fails with kInvalidArgument if `out` is too small or the struct is not
// encodable: version not 2/3, v2 with non-implied v3 values, v3 header_length
// < 104, compression_type set without room for it, or unknown_fields not
// exactly header_length - 112 bytes.
Status encode_header(const Header& header, MutableByteSpan out);
Result<std::vector<std::byte>> encode_header(const Header& header);

// The geometry of a header that passed validate_header.
inline Geometry header_geometry(const Header& header) {
    return Geometry{header.cluster_bits, (header.incompatible_features & kIncompatExtendedL2) != 0,
                    header.refcount_order};
}

// The size QEMU exposes and writes back: the stored size rounded down to 512.
inline uint64_t virtual_disk_size(const Header& header) {
    return align_down(header.size, kSectorSize);
}

// What a validated header tells the driver to read next (then: decode the L1
// and refcount tables with decode_be64_table, the snapshot table with
// scan_snapshot_table / parse_snapshot_table).
struct HeaderPlan {
    Extent l1_table;                // l1_size * 8 bytes at l1_table_offset
    Extent refcount_table;          // refcount_table_clusters clusters
    uint64_t snapshots_offset = 0;  // variable length: see scan_snapshot_table
    uint32_t nb_snapshots = 0;
    bool operator==(const HeaderPlan&) const = default;
};
HeaderPlan header_plan(const Header& header);

}  // namespace coblock::qcow2
