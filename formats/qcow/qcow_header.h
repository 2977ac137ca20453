// qcow version 1 header: the 48-byte structure at offset 0, its validation in
// QEMU's order, probing, and the backing file name. Pure.
// Implements specs/qcow-v1.md §2 (header), §3 (open checks), §8 (encryption refusal).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "formats/bytes.h"
#include "formats/qcow/qcow_geometry.h"
#include "formats/result.h"

namespace coblock::qcow {

// 'Q' 'F' 'I' 0xfb, shared with qcow2; the version tells them apart.
inline constexpr uint32_t kMagic = 0x514649fb;
// The only version this format covers; 2 and 3 are qcow2.
inline constexpr uint32_t kVersion = 1;
// The header is exactly 48 bytes; nothing else is stored at a fixed place.
inline constexpr uint64_t kHeaderSize = 48;
// QEMU refuses sizes 0 and 1 ("image size is too small").
inline constexpr uint64_t kMinSize = 2;
// QEMU reads the backing file name into a 1024-byte buffer with a NUL.
inline constexpr uint32_t kMaxBackingFileSize = 1023;
// crypt_method values: none and AES-128-CBC. Anything else is invalid.
inline constexpr uint32_t kCryptNone = 0;
inline constexpr uint32_t kCryptAes = 1;
// The score QEMU's qcow driver gives to a file it recognises.
inline constexpr int kProbeScore = 100;

// Every field of the on-disk header, decoded as stored (the two padding bytes
// at offset 34 are ignored on decode and written as zero).
struct Header {
    uint32_t magic = kMagic;
    uint32_t version = kVersion;
    uint64_t backing_file_offset = 0;  // 0 = no backing file
    uint32_t backing_file_size = 0;    // name length in bytes, no NUL stored
    uint32_t mtime = 0;                // QEMU writes 0 and never reads it
    uint64_t size = 0;                 // virtual disk size in bytes
    uint8_t cluster_bits = 0;
    uint8_t l2_bits = 0;
    uint32_t crypt_method = kCryptNone;
    uint64_t l1_table_offset = 0;

    bool operator==(const Header&) const = default;
};

// QEMU's probe: kProbeScore if `first_bytes` holds at least a header with the
// magic and version 1, else 0. Never fails.
int probe_score(ByteSpan first_bytes);

// Decodes the 48 header bytes at the start of `bytes` without judging them.
// Fails (corrupt) only when fewer than kHeaderSize bytes are given.
Result<Header> decode_header(ByteSpan bytes);

// Writes the 48 header bytes into the start of `out`. Encodes any Header,
// valid or not, so decode -> encode -> decode is the identity. Fails
// (invalid argument) only when `out` is shorter than kHeaderSize.
Status encode_header(const Header& header, MutableByteSpan out);

// Checks a decoded header in QEMU's open order (§3): magic, version, size,
// cluster_bits, l2_bits, crypt_method (0 or 1; AES is *valid* here, see
// check_supported), the L1 size limits, the backing file name length. Then,
// stricter than QEMU, that the L1 table and backing file name end at or
// before kMaxFileOffset. Errors name the field and value; a wrong magic is an
// invalid argument (not a qcow image), versions other than 1 are unsupported,
// everything else is corrupt. When this succeeds, header_geometry(),
// l1_table_extent() and backing_file_name_extent() cannot fail.
Status validate_header(const Header& header);

// decode_header + validate_header: what a driver calls on the first 48 bytes.
Result<Header> parse_header(ByteSpan bytes);

// Refuses what coblock cannot serve even though the format allows it: AES
// encryption (crypt_method 1) gives an unsupported error. A driver calls this
// right after parse_header and before reading anything else; `info`-style
// callers that only report may skip it (see is_encrypted).
Status check_supported(const Header& header);

inline bool is_encrypted(const Header& header) {
    return header.crypt_method != kCryptNone;
}

// The geometry the header describes. Fails like make_geometry() on a header
// that has not been validated.
Result<Geometry> header_geometry(const Header& header);

// The size QEMU exposes: `size` rounded down to a multiple of 512.
inline uint64_t virtual_size(const Header& header) {
    return header.size & ~(kSectorSize - 1);
}

// Where the L1 table lives (offset and 8 * l1_size bytes). The bytes go to
// parse_l1_table(). Fails like validate_header() on a header that is invalid.
Result<Extent> l1_table_extent(const Header& header);

// True when the header names a backing file. Like QEMU, an offset of 0 means
// none, and a zero-length name at a non-zero offset is an empty name, which
// QEMU's block layer also treats as no backing file.
inline bool has_backing_file(const Header& header) {
    return header.backing_file_offset != 0 && header.backing_file_size != 0;
}

// The bytes to read for the backing file name, or nullopt when there is no
// backing file. Fails like validate_header() on a header that is invalid.
Result<std::optional<Extent>> backing_file_name_extent(const Header& header);

// Decodes the name from the bytes read at backing_file_name_extent(); `bytes`
// must be exactly backing_file_size long (invalid argument otherwise). As in
// QEMU, which keeps the name as a C string, the name ends at the first NUL
// byte if one is stored.
Result<std::string> parse_backing_file_name(const Header& header, ByteSpan bytes);

}  // namespace coblock::qcow
