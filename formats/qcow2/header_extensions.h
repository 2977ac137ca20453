// qcow2 header extensions: backing format, external data file name, crypto
// header pointer, feature name table, bitmaps, unknown ones (kept verbatim).
// Pure. Implements specs/qcow2.txt "Header extensions" .. "Bitmaps extension"
// and specs/qcow2-notes.md §2 items 6, 19 and §3.2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/bytes.h"
#include "formats/qcow2/header.h"
#include "formats/result.h"

namespace coblock::qcow2 {

// Which feature bitmap a feature name table entry describes.
enum class FeatureType : uint8_t { kIncompatible = 0, kCompatible = 1, kAutoclear = 2 };

inline constexpr size_t kFeatureNameEntryBytes = 48;
inline constexpr size_t kFeatureNameBytes = 46;

struct FeatureNameEntry {
    uint8_t type = 0;  // FeatureType value; other values are kept as found
    uint8_t bit = 0;
    std::string name;  // up to 46 bytes, NUL padding removed
    bool operator==(const FeatureNameEntry&) const = default;
};

// The bitmaps extension (exactly 24 bytes). Its contents are validated only
// when autoclear bit 0 says they are consistent; otherwise they are kept as
// found (a writer drops them, see qcow2-notes.md §16).
struct BitmapsExtension {
    uint32_t nb_bitmaps = 0;
    uint32_t reserved = 0;
    uint64_t bitmap_directory_size = 0;
    uint64_t bitmap_directory_offset = 0;
    bool operator==(const BitmapsExtension&) const = default;
};
inline constexpr uint32_t kBitmapsExtensionBytes = 24;

// Full disk encryption header pointer (exactly 16 bytes, LUKS only).
struct CryptoHeaderExtension {
    uint64_t offset = 0;
    uint64_t length = 0;
    bool operator==(const CryptoHeaderExtension&) const = default;
};
inline constexpr uint32_t kCryptoHeaderExtensionBytes = 16;

// An extension type this implementation does not know: preserved verbatim.
struct UnknownExtension {
    uint32_t type = 0;
    std::vector<std::byte> data;
    bool operator==(const UnknownExtension&) const = default;
};

// All extensions of one image. A known type that appears twice keeps the
// last occurrence (QEMU does the same); unknown ones keep their file order.
struct HeaderExtensions {
    std::optional<std::string> backing_format;  // raw bytes, not NUL-terminated on disk
    std::optional<std::string> data_file;       // external data file name
    std::optional<CryptoHeaderExtension> crypto;
    std::optional<std::vector<FeatureNameEntry>> feature_table;
    std::optional<BitmapsExtension> bitmaps;
    std::vector<UnknownExtension> unknown;
    bool operator==(const HeaderExtensions&) const = default;
};

// Parses the extension area `area` (cluster 0 bytes [header_length, end),
// where end is backing_file_offset if non-zero, else cluster_size) for the
// image whose fixed header is `header`. Stops at the end marker or the end of
// the area. Errors (kCorrupt): an extension header or data running past the
// area; backing format of 16 bytes or more; bitmaps extension not 24 bytes,
// or, with autoclear bit 0 set, reserved != 0, nb_bitmaps 0 or > 65535,
// misaligned directory or directory larger than 64 MiB - 1 KiB; a crypto
// extension without crypt_method 2, not 16 bytes, or misaligned. The feature
// table may have any length; a trailing partial entry reads zero-padded.
// `area_offset` is the position of `area` in the file, for error offsets.
Result<HeaderExtensions> parse_header_extensions(ByteSpan area, uint64_t area_offset,
                                                 const Header& header);

// Bytes encode_header_extensions writes without the end marker: each
// extension is 8 + data padded to 8, in QEMU's order.
Result<uint64_t> header_extensions_size(const HeaderExtensions& extensions);

// Writes the extensions in QEMU's order (backing format, data file, crypto,
// feature table, bitmaps, unknown ones) into `area`, then an end marker if
// at least 8 bytes remain. Padding of the last extension is cut at the end of
// the area (readers skip it anyway). Returns the bytes used. kInvalidArgument
// if an extension does not fit (8-byte header + data) or if 1..7 bytes would
// remain (no room for an end marker, which readers would misparse).
Result<uint64_t> encode_header_extensions(const HeaderExtensions& extensions, MutableByteSpan area);

// The table QEMU writes (8 entries, qcow2-notes.md §3.2).
std::vector<FeatureNameEntry> qemu_feature_table();

// The name of `bit` of `type` in `table`, if the table has one.
std::optional<std::string> feature_name(const std::vector<FeatureNameEntry>& table,
                                        FeatureType type, uint32_t bit);

// The message for unsupported feature bits `mask` of `type`, naming each bit
// from the image's feature name table when it has an entry:
//   "qcow2: unsupported incompatible feature: foo (bit 5)"
//   "qcow2: unsupported incompatible features: foo (bit 5), unknown (bit 9)"
// Names are sanitised (non-printable bytes become '?').
std::string unsupported_features_message(uint64_t mask, FeatureType type,
                                         const std::vector<FeatureNameEntry>* table);

}  // namespace coblock::qcow2
