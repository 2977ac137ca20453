// qcow2 header extensions: parse, validate, encode; feature name messages.
// Pure. Implements specs/qcow2.txt "Header extensions" and qcow2-notes.md §2.
#include "formats/qcow2/header_extensions.h"

#include <algorithm>

namespace coblock::qcow2 {

namespace {

constexpr size_t kExtensionHeaderBytes = 8;

std::string u64s(uint64_t v) {
    return std::to_string(v);
}

std::string to_string(ByteSpan bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<FeatureNameEntry> parse_feature_table(ByteSpan data) {
    std::vector<FeatureNameEntry> table;
    for (size_t pos = 0; pos < data.size(); pos += kFeatureNameEntryBytes) {
        // A partial last entry is read zero-padded, as QEMU's buffer is.
        std::byte entry[kFeatureNameEntryBytes] = {};
        const size_t n = std::min(kFeatureNameEntryBytes, data.size() - pos);
        std::copy_n(data.begin() + pos, n, entry);
        FeatureNameEntry e;
        e.type = std::to_integer<uint8_t>(entry[0]);
        e.bit = std::to_integer<uint8_t>(entry[1]);
        const char* name = reinterpret_cast<const char*>(entry + 2);
        e.name.assign(name, std::find(name, name + kFeatureNameBytes, '\0'));
        table.push_back(std::move(e));
    }
    return table;
}

Status validate_bitmaps(const BitmapsExtension& b, const Header& header, uint64_t offset) {
    if (b.reserved != 0) {
        return corrupt_error(
            "qcow2: bitmaps extension reserved field " + hex_string(b.reserved) + " is not zero",
            offset);
    }
    if (b.nb_bitmaps == 0 || b.nb_bitmaps > kMaxBitmaps) {
        return corrupt_error("qcow2: bitmaps extension nb_bitmaps " + u64s(b.nb_bitmaps) +
                                 " out of range 1.." + u64s(kMaxBitmaps),
                             offset);
    }
    if (b.bitmap_directory_offset & ((uint64_t{1} << header.cluster_bits) - 1)) {
        return corrupt_error("qcow2: bitmap_directory_offset " +
                                 hex_string(b.bitmap_directory_offset) + " is not cluster aligned",
                             offset);
    }
    if (b.bitmap_directory_size > kMaxBitmapDirectoryBytes) {
        return corrupt_error("qcow2: bitmap_directory_size " + u64s(b.bitmap_directory_size) +
                                 " exceeds limit " + u64s(kMaxBitmapDirectoryBytes),
                             offset);
    }
    return ok_status();
}

}  // namespace

Result<HeaderExtensions> parse_header_extensions(ByteSpan area, uint64_t area_offset,
                                                 const Header& header) {
    HeaderExtensions ext;
    size_t pos = 0;
    while (pos < area.size()) {
        const uint64_t ext_offset = area_offset + pos;
        if (area.size() - pos < kExtensionHeaderBytes) {
            return corrupt_error("qcow2: header extension at " + hex_string(ext_offset) +
                                     " is truncated by the end of the extension area",
                                 ext_offset);
        }
        const uint32_t type = load_be<uint32_t>(area.data() + pos);
        const uint32_t length = load_be<uint32_t>(area.data() + pos + 4);
        pos += kExtensionHeaderBytes;
        if (length > area.size() - pos) {
            return corrupt_error("qcow2: header extension " + hex_string(type) + " length " +
                                     u64s(length) + " exceeds the extension area (" +
                                     u64s(area.size() - pos) + " bytes left)",
                                 ext_offset);
        }
        if (type == kExtEnd) return ext;
        const ByteSpan data = area.subspan(pos, length);
        switch (type) {
            case kExtBackingFormat:
                if (length > kMaxBackingFormatLength) {
                    return corrupt_error("qcow2: backing format name length " + u64s(length) +
                                             " exceeds limit " + u64s(kMaxBackingFormatLength),
                                         ext_offset);
                }
                ext.backing_format = to_string(data);
                break;
            case kExtDataFile:
                ext.data_file = to_string(data);
                break;
            case kExtFeatureTable:
                ext.feature_table = parse_feature_table(data);
                break;
            case kExtBitmaps: {
                if (length != kBitmapsExtensionBytes) {
                    return corrupt_error("qcow2: bitmaps extension length " + u64s(length) +
                                             ", expected " + u64s(kBitmapsExtensionBytes),
                                         ext_offset);
                }
                ByteReader r(data);
                BitmapsExtension b;
                b.nb_bitmaps = r.be32();
                b.reserved = r.be32();
                b.bitmap_directory_size = r.be64();
                b.bitmap_directory_offset = r.be64();
                // Without autoclear bit 0 the contents are stale by definition
                // and QEMU does not look at them.
                if (header.autoclear_features & kAutoclearBitmaps) {
                    TRY(validate_bitmaps(b, header, ext_offset));
                }
                ext.bitmaps = b;
                break;
            }
            case kExtCryptoHeader: {
                if (header.crypt_method != kCryptLuks) {
                    return corrupt_error("qcow2: crypto header extension with crypt_method " +
                                             u64s(header.crypt_method) + " (only luks uses it)",
                                         ext_offset);
                }
                if (length != kCryptoHeaderExtensionBytes) {
                    return corrupt_error("qcow2: crypto header extension length " + u64s(length) +
                                             ", expected " + u64s(kCryptoHeaderExtensionBytes),
                                         ext_offset);
                }
                CryptoHeaderExtension c;
                c.offset = load_be<uint64_t>(data.data());
                c.length = load_be<uint64_t>(data.data() + 8);
                if (c.offset & ((uint64_t{1} << header.cluster_bits) - 1)) {
                    return corrupt_error("qcow2: crypto header offset " + hex_string(c.offset) +
                                             " is not cluster aligned",
                                         ext_offset);
                }
                ext.crypto = c;
                break;
            }
            default:
                ext.unknown.push_back(UnknownExtension{type, {data.begin(), data.end()}});
                break;
        }
        // The padded length may step past the area end: the loop then ends,
        // as QEMU's does.
        pos += align_up(length, 8);
    }
    return ext;
}

namespace {

// One extension as the encoder sees it: type and data bytes.
struct EncodedExtension {
    uint32_t type;
    std::vector<std::byte> data;
};

std::vector<std::byte> string_bytes(const std::string& s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

std::vector<EncodedExtension> qemu_ordered(const HeaderExtensions& ext) {
    std::vector<EncodedExtension> out;
    if (ext.backing_format) out.push_back({kExtBackingFormat, string_bytes(*ext.backing_format)});
    if (ext.data_file) out.push_back({kExtDataFile, string_bytes(*ext.data_file)});
    if (ext.crypto) {
        std::vector<std::byte> d(kCryptoHeaderExtensionBytes);
        store_be<uint64_t>(d.data(), ext.crypto->offset);
        store_be<uint64_t>(d.data() + 8, ext.crypto->length);
        out.push_back({kExtCryptoHeader, std::move(d)});
    }
    if (ext.feature_table) {
        std::vector<std::byte> d(ext.feature_table->size() * kFeatureNameEntryBytes);
        for (size_t i = 0; i < ext.feature_table->size(); ++i) {
            const FeatureNameEntry& e = (*ext.feature_table)[i];
            std::byte* p = d.data() + i * kFeatureNameEntryBytes;
            p[0] = std::byte{e.type};
            p[1] = std::byte{e.bit};
            std::copy_n(reinterpret_cast<const std::byte*>(e.name.data()),
                        std::min(e.name.size(), kFeatureNameBytes), p + 2);
        }
        out.push_back({kExtFeatureTable, std::move(d)});
    }
    if (ext.bitmaps) {
        std::vector<std::byte> d(kBitmapsExtensionBytes);
        store_be<uint32_t>(d.data(), ext.bitmaps->nb_bitmaps);
        store_be<uint32_t>(d.data() + 4, ext.bitmaps->reserved);
        store_be<uint64_t>(d.data() + 8, ext.bitmaps->bitmap_directory_size);
        store_be<uint64_t>(d.data() + 16, ext.bitmaps->bitmap_directory_offset);
        out.push_back({kExtBitmaps, std::move(d)});
    }
    for (const UnknownExtension& u : ext.unknown)
        out.push_back({u.type, u.data});
    return out;
}

Status check_encodable(const std::vector<EncodedExtension>& list) {
    for (const EncodedExtension& e : list) {
        if (e.type == kExtEnd) {
            return invalid_argument("qcow2: an extension of type 0 would end the list");
        }
        if (e.data.size() > 0xffffffffu) {
            return invalid_argument("qcow2: header extension " + hex_string(e.type) +
                                    " too long: " + u64s(e.data.size()) + " bytes");
        }
    }
    return ok_status();
}

}  // namespace

Result<uint64_t> header_extensions_size(const HeaderExtensions& extensions) {
    const std::vector<EncodedExtension> list = qemu_ordered(extensions);
    TRY(check_encodable(list));
    uint64_t total = 0;
    for (const EncodedExtension& e : list)
        total += kExtensionHeaderBytes + align_up(e.data.size(), 8);
    return total;
}

Result<uint64_t> encode_header_extensions(const HeaderExtensions& extensions,
                                          MutableByteSpan area) {
    const std::vector<EncodedExtension> list = qemu_ordered(extensions);
    TRY(check_encodable(list));
    size_t pos = 0;
    for (const EncodedExtension& e : list) {
        const size_t left = area.size() - pos;
        if (left < kExtensionHeaderBytes || e.data.size() > left - kExtensionHeaderBytes) {
            return invalid_argument("qcow2: header extension " + hex_string(e.type) + " of " +
                                    u64s(e.data.size()) + " bytes does not fit in " + u64s(left) +
                                    " bytes");
        }
        std::byte* p = area.data() + pos;
        store_be<uint32_t>(p, e.type);
        store_be<uint32_t>(p + 4, static_cast<uint32_t>(e.data.size()));
        std::copy(e.data.begin(), e.data.end(), p + kExtensionHeaderBytes);
        const size_t padded = kExtensionHeaderBytes + align_up(e.data.size(), 8);
        const size_t used = std::min(padded, left);
        std::fill(p + kExtensionHeaderBytes + e.data.size(), p + used, std::byte{0});
        pos += used;
    }
    const size_t left = area.size() - pos;
    if (left >= kExtensionHeaderBytes) {
        std::fill_n(area.data() + pos, kExtensionHeaderBytes, std::byte{0});
        pos += kExtensionHeaderBytes;
    } else if (left != 0) {
        return invalid_argument("qcow2: " + u64s(left) +
                                " bytes left after the header extensions: no room for the end "
                                "marker");
    }
    return pos;
}

std::vector<FeatureNameEntry> qemu_feature_table() {
    constexpr auto inc = static_cast<uint8_t>(FeatureType::kIncompatible);
    constexpr auto com = static_cast<uint8_t>(FeatureType::kCompatible);
    constexpr auto acl = static_cast<uint8_t>(FeatureType::kAutoclear);
    return {
        {inc, 0, "dirty bit"},
        {inc, 1, "corrupt bit"},
        {inc, 2, "external data file"},
        {inc, 3, "compression type"},
        {inc, 4, "extended L2 entries"},
        {com, 0, "lazy refcounts"},
        {acl, 0, "bitmaps"},
        {acl, 1, "raw external data"},
    };
}

std::optional<std::string> feature_name(const std::vector<FeatureNameEntry>& table,
                                        FeatureType type, uint32_t bit) {
    for (const FeatureNameEntry& e : table) {
        if (e.type == static_cast<uint8_t>(type) && e.bit == bit && !e.name.empty()) return e.name;
    }
    return std::nullopt;
}

std::string unsupported_features_message(uint64_t mask, FeatureType type,
                                         const std::vector<FeatureNameEntry>* table) {
    const char* kind = type == FeatureType::kIncompatible ? "incompatible"
                       : type == FeatureType::kCompatible ? "compatible"
                                                          : "autoclear";
    std::string list;
    int count = 0;
    for (uint32_t bit = 0; bit < 64; ++bit) {
        if (!(mask & (uint64_t{1} << bit))) continue;
        std::optional<std::string> name;
        if (table) name = feature_name(*table, type, bit);
        std::string shown = name ? *name : "unknown";
        for (char& c : shown) {
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                c = '?';
        }
        if (count++ > 0) list += ", ";
        list += shown + " (bit " + u64s(bit) + ")";
    }
    return std::string("qcow2: unsupported ") + kind + (count > 1 ? " features: " : " feature: ") +
           list;
}

}  // namespace coblock::qcow2
