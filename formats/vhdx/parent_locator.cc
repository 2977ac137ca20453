// VHDX parent locator. Pure. Implements spec vhdx.md §10.1 and §10.2.
#include "formats/vhdx/parent_locator.h"

#include <set>

namespace coblock::vhdx {
namespace {

constexpr uint16_t kMaxKeyValueCount = UINT16_MAX;  // the count field is 16 bits
constexpr size_t kMaxStringBytes = UINT16_MAX - 1;  // length field is 16 bits and even
constexpr char32_t kReplacement = 0xFFFD;

std::string quote(std::u16string_view s) {
    return "'" + utf16_to_utf8(s) + "'";
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

void append_utf16(std::u16string& out, char32_t cp) {
    if (cp < 0x10000) {
        out += static_cast<char16_t>(cp);
    } else {
        cp -= 0x10000;
        out += static_cast<char16_t>(0xD800 | (cp >> 10));
        out += static_cast<char16_t>(0xDC00 | (cp & 0x3FF));
    }
}

Status check_string(std::u16string_view s, const char* what, size_t index) {
    if (s.empty())
        return invalid_argument("vhdx: parent locator entry " + std::to_string(index) + " " + what +
                                " is empty");
    if (s.size() * 2 > kMaxStringBytes)
        return invalid_argument("vhdx: parent locator entry " + std::to_string(index) + " " + what +
                                " of " + std::to_string(s.size() * 2) + " bytes exceeds limit " +
                                std::to_string(kMaxStringBytes));
    if (s.find(u'\0') != std::u16string_view::npos)
        return invalid_argument("vhdx: parent locator entry " + std::to_string(index) + " " + what +
                                " contains a nul character");
    return ok_status();
}

}  // namespace

const std::u16string* ParentLocator::find(std::u16string_view key) const {
    for (const ParentLocatorEntry& e : entries)
        if (e.key == key) return &e.value;
    return nullptr;
}

std::string utf16_to_utf8(std::u16string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char32_t unit = text[i];
        if (unit >= 0xD800 && unit <= 0xDBFF && i + 1 < text.size() && text[i + 1] >= 0xDC00 &&
            text[i + 1] <= 0xDFFF) {
            append_utf8(out, 0x10000 + ((unit - 0xD800) << 10) + (text[i + 1] - 0xDC00));
            ++i;
        } else if (unit >= 0xD800 && unit <= 0xDFFF) {
            append_utf8(out, kReplacement);
        } else {
            append_utf8(out, unit);
        }
    }
    return out;
}

std::u16string utf8_to_utf16(std::string_view text) {
    std::u16string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const auto b0 = static_cast<unsigned char>(text[i]);
        size_t len = b0 < 0x80           ? 1
                     : (b0 >> 5) == 0x6  ? 2
                     : (b0 >> 4) == 0xE  ? 3
                     : (b0 >> 3) == 0x1E ? 4
                                         : 0;
        char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
        bool good = len != 0 && i + len <= text.size();
        for (size_t k = 1; good && k < len; ++k) {
            const auto b = static_cast<unsigned char>(text[i + k]);
            if ((b & 0xC0) != 0x80) good = false;
            cp = (cp << 6) | (b & 0x3F);
        }
        // Reject overlong forms, surrogates and values beyond U+10FFFF.
        static constexpr char32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (good && (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
            good = false;
        if (!good) {
            out += static_cast<char16_t>(kReplacement);
            ++i;
            continue;
        }
        append_utf16(out, cp);
        i += len;
    }
    return out;
}

Result<ParentLocator> parse_parent_locator(ByteSpan item) {
    ByteReader reader(item);
    ParentLocator locator;
    locator.locator_type = read_guid(reader);
    reader.skip(2);  // reserved
    const uint16_t count = reader.le16();
    if (!reader.ok())
        return corrupt_error("vhdx: parent locator item of " + std::to_string(item.size()) +
                             " bytes is shorter than its " +
                             std::to_string(kParentLocatorHeaderSize) + "-byte header");
    const uint64_t entries_end =
        kParentLocatorHeaderSize + uint64_t{count} * kParentLocatorEntrySize;
    if (entries_end > item.size())
        return corrupt_error("vhdx: parent locator key/value count " + std::to_string(count) +
                             " does not fit in the " + std::to_string(item.size()) + "-byte item");
    std::set<std::u16string> keys;
    locator.entries.reserve(count);
    // Strings may not share bytes in any sane item; bounding their total by
    // the item size keeps a hostile item from decoding gigabytes.
    uint64_t string_bytes = 0;
    for (uint16_t i = 0; i < count; ++i) {
        const uint32_t offsets[2] = {reader.le32(), reader.le32()};
        const uint16_t lengths[2] = {reader.le16(), reader.le16()};
        ParentLocatorEntry entry;
        std::u16string* strings[2] = {&entry.key, &entry.value};
        static constexpr const char* kWhat[2] = {"key", "value"};
        for (int s = 0; s < 2; ++s) {
            const std::string where =
                "vhdx: parent locator entry " + std::to_string(i) + " " + kWhat[s];
            if (offsets[s] == 0 || lengths[s] == 0 || lengths[s] % 2 != 0)
                return corrupt_error(where + " has offset " + std::to_string(offsets[s]) +
                                     " and length " + std::to_string(lengths[s]) +
                                     "; both must be non-zero and the length even");
            if (uint64_t{offsets[s]} + lengths[s] > item.size())
                return corrupt_error(where + " at " + std::to_string(offsets[s]) + "+" +
                                     std::to_string(lengths[s]) + " runs past the " +
                                     std::to_string(item.size()) + "-byte item");
            string_bytes += lengths[s];
            if (string_bytes > item.size())
                return corrupt_error(where + " brings the total string length to " +
                                     std::to_string(string_bytes) + ", more than the " +
                                     std::to_string(item.size()) + "-byte item");
            const std::byte* p = item.data() + offsets[s];
            for (size_t k = 0; k < lengths[s]; k += 2) {
                const uint16_t unit = load_le<uint16_t>(p + k);
                if (unit == 0) return corrupt_error(where + " contains a nul character");
                strings[s]->push_back(static_cast<char16_t>(unit));
            }
        }
        if (!keys.insert(entry.key).second)
            return corrupt_error("vhdx: parent locator key " + quote(entry.key) + " appears twice");
        locator.entries.push_back(std::move(entry));
    }
    return locator;
}

Result<std::vector<std::byte>> encode_parent_locator(const ParentLocator& locator) {
    if (locator.entries.size() > kMaxKeyValueCount)
        return invalid_argument("vhdx: parent locator entry count " +
                                std::to_string(locator.entries.size()) + " exceeds limit " +
                                std::to_string(kMaxKeyValueCount));
    std::set<std::u16string> keys;
    uint64_t size = kParentLocatorHeaderSize + locator.entries.size() * kParentLocatorEntrySize;
    for (size_t i = 0; i < locator.entries.size(); ++i) {
        const ParentLocatorEntry& e = locator.entries[i];
        TRY(check_string(e.key, "key", i));
        TRY(check_string(e.value, "value", i));
        if (!keys.insert(e.key).second)
            return invalid_argument("vhdx: parent locator key " + quote(e.key) + " appears twice");
        size += 2 * (e.key.size() + e.value.size());
    }
    // Offsets are u32; an item is at most 1 MiB anyway, so this is far away.
    if (size > UINT32_MAX)
        return invalid_argument("vhdx: parent locator of " + std::to_string(size) +
                                " bytes is too large");
    std::vector<std::byte> out(size);
    ByteWriter writer(out);
    write_guid(writer, locator.locator_type);
    writer.le16(0);
    writer.le16(static_cast<uint16_t>(locator.entries.size()));
    uint64_t string_pos =
        kParentLocatorHeaderSize + locator.entries.size() * kParentLocatorEntrySize;
    ByteWriter strings(out);
    strings.seek(string_pos);
    for (const ParentLocatorEntry& e : locator.entries) {
        writer.le32(static_cast<uint32_t>(string_pos));
        writer.le32(static_cast<uint32_t>(string_pos + 2 * e.key.size()));
        writer.le16(static_cast<uint16_t>(2 * e.key.size()));
        writer.le16(static_cast<uint16_t>(2 * e.value.size()));
        for (char16_t u : e.key)
            strings.le16(static_cast<uint16_t>(u));
        for (char16_t u : e.value)
            strings.le16(static_cast<uint16_t>(u));
        string_pos += 2 * (e.key.size() + e.value.size());
    }
    return out;
}

bool VhdxParentLinkage::matches(const Guid& data_write_guid) const {
    return parent_linkage == data_write_guid ||
           (parent_linkage2 && *parent_linkage2 == data_write_guid);
}

Result<VhdxParentLinkage> decode_vhdx_parent_locator(const ParentLocator& locator) {
    if (locator.locator_type != kVhdxParentLocatorTypeGuid)
        return unsupported_error("vhdx: unknown parent locator type " +
                                 locator.locator_type.to_string());
    VhdxParentLinkage out;
    const std::u16string* linkage = locator.find(u"parent_linkage");
    if (!linkage) return corrupt_error("vhdx: parent locator has no parent_linkage");
    auto guid = parse_guid_text(utf16_to_utf8(*linkage));
    if (!guid.ok())
        return corrupt_error("vhdx: parent locator parent_linkage " + quote(*linkage) +
                             " is not a guid");
    out.parent_linkage = *guid;
    if (const std::u16string* second = locator.find(u"parent_linkage2")) {
        auto guid2 = parse_guid_text(utf16_to_utf8(*second));
        if (!guid2.ok())
            return corrupt_error("vhdx: parent locator parent_linkage2 " + quote(*second) +
                                 " is not a guid");
        out.parent_linkage2 = *guid2;
    }
    if (const std::u16string* v = locator.find(u"relative_path"))
        out.relative_path = utf16_to_utf8(*v);
    if (const std::u16string* v = locator.find(u"volume_path")) out.volume_path = utf16_to_utf8(*v);
    if (const std::u16string* v = locator.find(u"absolute_win32_path"))
        out.absolute_win32_path = utf16_to_utf8(*v);
    if (!out.relative_path && !out.volume_path && !out.absolute_win32_path)
        return corrupt_error(
            "vhdx: parent locator has none of relative_path, volume_path, "
            "absolute_win32_path");
    return out;
}

ParentLocator make_vhdx_parent_locator(const VhdxParentLinkage& linkage) {
    ParentLocator locator;
    locator.locator_type = kVhdxParentLocatorTypeGuid;
    auto add = [&](std::u16string key, const std::string& value) {
        locator.entries.push_back({std::move(key), utf8_to_utf16(value)});
    };
    add(u"parent_linkage", linkage.parent_linkage.to_string(true));
    if (linkage.parent_linkage2) add(u"parent_linkage2", linkage.parent_linkage2->to_string(true));
    if (linkage.relative_path) add(u"relative_path", *linkage.relative_path);
    if (linkage.volume_path) add(u"volume_path", *linkage.volume_path);
    if (linkage.absolute_win32_path) add(u"absolute_win32_path", *linkage.absolute_win32_path);
    return locator;
}

}  // namespace coblock::vhdx
