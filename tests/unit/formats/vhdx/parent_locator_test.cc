// Tests of formats/vhdx/parent_locator: the key/value layout with UTF-16
// strings, every layout error, and the "VHDX parent" keys.
#include "formats/vhdx/parent_locator.h"

#include "tests/unit/formats/vhdx/test_util.h"

namespace coblock::vhdx {
namespace {

using namespace testing;

struct RawKv {
    std::u16string key, value;
};

// Item bytes in the layout Hyper-V and libvhdi describe: header, entries,
// then the strings, offsets relative to the item start.
Bytes locator_bytes(const Guid& type, const std::vector<RawKv>& kvs) {
    size_t size = 20 + 12 * kvs.size();
    for (const RawKv& kv : kvs)
        size += 2 * (kv.key.size() + kv.value.size());
    Bytes b(size);
    put_guid(b, 0, type);
    put16(b, 18, static_cast<uint16_t>(kvs.size()));
    size_t pos = 20 + 12 * kvs.size();
    for (size_t i = 0; i < kvs.size(); ++i) {
        const size_t e = 20 + 12 * i;
        put32(b, e, static_cast<uint32_t>(pos));
        for (char16_t c : kvs[i].key)
            put16(b, pos, c), pos += 2;
        put32(b, e + 4, static_cast<uint32_t>(pos));
        for (char16_t c : kvs[i].value)
            put16(b, pos, c), pos += 2;
        put16(b, e + 8, static_cast<uint16_t>(2 * kvs[i].key.size()));
        put16(b, e + 10, static_cast<uint16_t>(2 * kvs[i].value.size()));
    }
    return b;
}

const std::vector<RawKv> kHyperVKeys = {
    {u"parent_linkage", u"{83ED0EC3-24C8-49A6-A959-5E4BF1288BFB}"},
    {u"parent_linkage2", u"{00000000-0000-0000-0000-000000000000}"},
    {u"relative_path", u".\\parent.vhdx"},
    {u"volume_path", u"\\\\?\\Volume{12345678-0000-0000-0000-000000000000}\\dir\\parent.vhdx"},
    {u"absolute_win32_path", u"C:\\dir\\parent.vhdx"}};

TEST(VhdxParentLocator, ParsesHyperVLocator) {
    auto loc = parse_parent_locator(locator_bytes(kVhdxParentLocatorTypeGuid, kHyperVKeys));
    ASSERT_OK(loc);
    EXPECT_EQ(loc->locator_type, kVhdxParentLocatorTypeGuid);
    ASSERT_EQ(loc->entries.size(), 5u);
    ASSERT_NE(loc->find(u"relative_path"), nullptr);
    EXPECT_EQ(*loc->find(u"relative_path"), u".\\parent.vhdx");
    EXPECT_EQ(loc->find(u"Relative_Path"), nullptr);  // keys are case-sensitive

    auto link = decode_vhdx_parent_locator(*loc);
    ASSERT_OK(link);
    EXPECT_EQ(link->parent_linkage.to_string(), "83ed0ec3-24c8-49a6-a959-5e4bf1288bfb");
    ASSERT_TRUE(link->parent_linkage2.has_value());
    EXPECT_TRUE(link->parent_linkage2->is_zero());
    EXPECT_EQ(link->relative_path, ".\\parent.vhdx");
    EXPECT_EQ(link->absolute_win32_path, "C:\\dir\\parent.vhdx");
    EXPECT_TRUE(link->matches(link->parent_linkage));
    EXPECT_TRUE(link->matches(Guid{}));  // parent_linkage2
    EXPECT_FALSE(link->matches(test_guid(1)));
}

TEST(VhdxParentLocator, RoundTrip) {
    auto loc = parse_parent_locator(locator_bytes(kVhdxParentLocatorTypeGuid, kHyperVKeys));
    ASSERT_OK(loc);
    auto bytes = encode_parent_locator(*loc);
    ASSERT_OK(bytes);
    EXPECT_EQ(*bytes, locator_bytes(kVhdxParentLocatorTypeGuid, kHyperVKeys));
    auto back = parse_parent_locator(*bytes);
    ASSERT_OK(back);
    EXPECT_EQ(*back, *loc);
}

TEST(VhdxParentLocator, MakeAndDecode) {
    VhdxParentLinkage link;
    link.parent_linkage = test_guid(3);
    link.relative_path = "..\\base\\p\xC3\xA4rent.vhdx";  // non-ASCII survives UTF-16
    link.absolute_win32_path = "\\\\?\\d:\\base\\p\xC3\xA4rent.vhdx";
    const ParentLocator loc = make_vhdx_parent_locator(link);
    EXPECT_EQ(*loc.find(u"parent_linkage"), utf8_to_utf16(test_guid(3).to_string(true)));
    auto bytes = encode_parent_locator(loc);
    ASSERT_OK(bytes);
    auto parsed = parse_parent_locator(*bytes);
    ASSERT_OK(parsed);
    auto back = decode_vhdx_parent_locator(*parsed);
    ASSERT_OK(back);
    EXPECT_EQ(*back, link);
}

TEST(VhdxParentLocator, LayoutErrors) {
    Bytes good = locator_bytes(kVhdxParentLocatorTypeGuid, {{u"k", u"v"}});
    EXPECT_ERROR(parse_parent_locator(ByteSpan(good).first(10)), ErrorKind::kCorrupt,
                 "parent locator item of 10 bytes is shorter than its 20-byte header");
    Bytes b = good;
    put16(b, 18, 9);
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "parent locator key/value count 9 does not fit in the 36-byte item");
    b = good;
    put32(b, 20, 0);  // key offset 0
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "parent locator entry 0 key has offset 0 and length 2");
    b = good;
    put16(b, 30, 3);  // odd value length
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "entry 0 value has offset 34 and length 3");
    b = good;
    put16(b, 30, 0);
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "entry 0 value has offset 34 and length 0");
    b = good;
    put32(b, 24, 0xFFFFFFF0);
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "entry 0 value at 4294967280+2 runs past the 36-byte item");
    b = locator_bytes(kVhdxParentLocatorTypeGuid, {{u"k", std::u16string(u"a\0b", 3)}});
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "entry 0 value contains a nul character");
    b = locator_bytes(kVhdxParentLocatorTypeGuid, {{u"k", u"1"}, {u"k", u"2"}});
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "parent locator key 'k' appears twice");
}

TEST(VhdxParentLocator, SharedStringsBoundedByItemSize) {
    // Every entry points at the same long value: the total decoded length
    // would exceed the item, which a hostile item could use to blow up.
    std::vector<RawKv> kvs;
    for (int i = 0; i < 8; ++i)
        kvs.push_back({std::u16string(1, char16_t(u'a' + i)), u"x"});
    Bytes b = locator_bytes(kVhdxParentLocatorTypeGuid, kvs);
    b.resize(b.size() + 200);
    for (int i = 0; i < 8; ++i) {
        put32(b, 20 + 12 * i + 4, static_cast<uint32_t>(b.size() - 200));
        put16(b, 20 + 12 * i + 10, 200);
    }
    for (size_t off = b.size() - 200; off < b.size(); off += 2)
        put16(b, off, u'y');
    EXPECT_ERROR(parse_parent_locator(b), ErrorKind::kCorrupt,
                 "value brings the total string length to");
}

TEST(VhdxParentLocator, EncodeErrors) {
    ParentLocator loc{kVhdxParentLocatorTypeGuid, {{u"", u"v"}}};
    EXPECT_ERROR(encode_parent_locator(loc), ErrorKind::kInvalidArgument, "entry 0 key is empty");
    loc.entries = {{u"k", std::u16string(u"a\0", 2)}};
    EXPECT_ERROR(encode_parent_locator(loc), ErrorKind::kInvalidArgument, "value contains a nul");
    loc.entries = {{u"k", u"1"}, {u"k", u"2"}};
    EXPECT_ERROR(encode_parent_locator(loc), ErrorKind::kInvalidArgument, "key 'k' appears twice");
    loc.entries = {{u"k", std::u16string(40000, u'x')}};
    EXPECT_ERROR(encode_parent_locator(loc), ErrorKind::kInvalidArgument,
                 "value of 80000 bytes exceeds limit 65534");
}

TEST(VhdxParentLocator, VhdxKeyErrors) {
    auto decode = [](const Guid& type, const std::vector<RawKv>& kvs) {
        auto loc = parse_parent_locator(locator_bytes(type, kvs));
        EXPECT_TRUE(loc.ok());
        return decode_vhdx_parent_locator(*loc);
    };
    EXPECT_ERROR(decode(test_guid(4), kHyperVKeys), ErrorKind::kUnsupported,
                 "unknown parent locator type " + test_guid(4).to_string());
    EXPECT_ERROR(decode(kVhdxParentLocatorTypeGuid, {{u"relative_path", u"p"}}),
                 ErrorKind::kCorrupt, "parent locator has no parent_linkage");
    EXPECT_ERROR(decode(kVhdxParentLocatorTypeGuid,
                        {{u"parent_linkage", u"{nope}"}, {u"relative_path", u"p"}}),
                 ErrorKind::kCorrupt, "parent_linkage '{nope}' is not a guid");
    EXPECT_ERROR(decode(kVhdxParentLocatorTypeGuid,
                        {{u"parent_linkage", u"83ed0ec3-24c8-49a6-a959-5e4bf1288bfb"},
                         {u"parent_linkage2", u"x"},
                         {u"relative_path", u"p"}}),
                 ErrorKind::kCorrupt, "parent_linkage2 'x' is not a guid");
    EXPECT_ERROR(decode(kVhdxParentLocatorTypeGuid,
                        {{u"parent_linkage", u"83ed0ec3-24c8-49a6-a959-5e4bf1288bfb"}}),
                 ErrorKind::kCorrupt, "none of relative_path, volume_path, absolute_win32_path");
    // Braces optional, unknown keys ignored.
    auto ok = decode(kVhdxParentLocatorTypeGuid,
                     {{u"parent_linkage", u"83ED0EC3-24C8-49A6-A959-5E4BF1288BFB"},
                      {u"x-vendor", u"1"},
                      {u"volume_path", u"v"}});
    ASSERT_OK(ok);
    EXPECT_EQ(ok->volume_path, "v");
}

TEST(VhdxParentLocator, Utf16Conversion) {
    EXPECT_EQ(utf16_to_utf8(u"abc"), "abc");
    EXPECT_EQ(utf16_to_utf8(u"\u00e4\u20ac"), "\xC3\xA4\xE2\x82\xAC");
    EXPECT_EQ(utf16_to_utf8(u"\U0001F600"), "\xF0\x9F\x98\x80");
    // Unpaired surrogates become U+FFFD instead of failing.
    const char16_t lone[] = {u'a', 0xD800, u'b', 0xDC00, 0};
    EXPECT_EQ(utf16_to_utf8(lone),
              "a\xEF\xBF\xBD"
              "b\xEF\xBF\xBD");
    EXPECT_EQ(utf8_to_utf16("\xF0\x9F\x98\x80x"), u"\U0001F600x");
    EXPECT_EQ(utf8_to_utf16("a\xFF"
                            "b"),
              u"a\uFFFDb");
    EXPECT_EQ(utf8_to_utf16("\xC0\x80"), u"\uFFFD\uFFFD");  // overlong NUL
    EXPECT_EQ(utf8_to_utf16("\xE2\x82"), u"\uFFFD\uFFFD");  // truncated
}

TEST(VhdxParentLocator, UnpairedSurrogateRoundTrips) {
    ParentLocator loc{kVhdxParentLocatorTypeGuid, {{u"k", std::u16string(1, char16_t(0xD801))}}};
    auto bytes = encode_parent_locator(loc);
    ASSERT_OK(bytes);
    auto back = parse_parent_locator(*bytes);
    ASSERT_OK(back);
    EXPECT_EQ(*back, loc);
}

}  // namespace
}  // namespace coblock::vhdx
