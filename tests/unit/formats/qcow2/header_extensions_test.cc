// Tests of qcow2 header extensions: every known type, unknown ones preserved,
// area bounds, validation messages, encoder order, feature name messages.
#include "formats/qcow2/header_extensions.h"

#include "tests/unit/formats/qcow2/test_bytes.h"

namespace coblock::qcow2 {
namespace {

using namespace test;

// Appends extensions by hand (type, length, data, zero padding to 8).
class AreaBuilder {
  public:
    explicit AreaBuilder(size_t size) : bytes_(size) {}
    AreaBuilder& ext(uint32_t type, const std::string& data) {
        bytes_.be32(pos_, type).be32(pos_ + 4, static_cast<uint32_t>(data.size()));
        bytes_.str(pos_ + 8, data);
        pos_ += 8 + (data.size() + 7) / 8 * 8;
        return *this;
    }
    AreaBuilder& end() { return ext(0, ""); }
    Bytes& bytes() { return bytes_; }
    size_t pos() const { return pos_; }

  private:
    Bytes bytes_;
    size_t pos_ = 0;
};

std::string be(uint64_t v, int n) {
    std::string s(n, '\0');
    for (int i = 0; i < n; ++i)
        s[i] = static_cast<char>(v >> (8 * (n - 1 - i)));
    return s;
}

std::string feature_entry(uint8_t type, uint8_t bit, const std::string& name) {
    std::string s(48, '\0');
    s[0] = static_cast<char>(type);
    s[1] = static_cast<char>(bit);
    s.replace(2, name.size(), name);
    return s;
}

Header plain_header() {
    Header h;
    h.cluster_bits = 16;
    return h;
}

TEST(Qcow2Extensions, ParsesEveryKnownTypeAndKeepsUnknown) {
    AreaBuilder a(4096);
    a.ext(kExtBackingFormat, "qcow2")
        .ext(0x12345678, "opaque-data")
        .ext(kExtDataFile, "data.raw")
        .ext(kExtFeatureTable, feature_entry(0, 5, "shiny") + feature_entry(2, 0, "bitmaps"))
        .ext(kExtBitmaps, be(2, 4) + be(0, 4) + be(0x100, 8) + be(0x70000, 8))
        .ext(0x0badf00d, "")
        .end();
    Header h = plain_header();
    h.autoclear_features = kAutoclearBitmaps;
    auto r = parse_header_extensions(a.bytes(), 112, h);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->backing_format, "qcow2");
    EXPECT_EQ(r->data_file, "data.raw");
    ASSERT_TRUE(r->feature_table.has_value());
    ASSERT_EQ(r->feature_table->size(), 2u);
    EXPECT_EQ((*r->feature_table)[0], (FeatureNameEntry{0, 5, "shiny"}));
    EXPECT_EQ((*r->feature_table)[1], (FeatureNameEntry{2, 0, "bitmaps"}));
    EXPECT_EQ(r->bitmaps, (BitmapsExtension{2, 0, 0x100, 0x70000}));
    EXPECT_FALSE(r->crypto.has_value());
    ASSERT_EQ(r->unknown.size(), 2u);
    EXPECT_EQ(r->unknown[0].type, 0x12345678u);
    EXPECT_EQ(r->unknown[0].data.size(), 11u);
    EXPECT_EQ(r->unknown[0].data[0], std::byte{'o'});
    EXPECT_EQ(r->unknown[1].type, 0x0badf00du);
    EXPECT_TRUE(r->unknown[1].data.empty());

    // Re-encoding uses QEMU's order and parses back to the same struct.
    std::vector<std::byte> area(4096);
    auto used = encode_header_extensions(*r, area);
    ASSERT_THAT(used, IsOk());
    EXPECT_EQ(*used, a.pos());  // same extensions, same padded sizes
    EXPECT_EQ(load_be<uint32_t>(area.data()), kExtBackingFormat);
    EXPECT_EQ(load_be<uint32_t>(area.data() + 16), kExtDataFile);
    EXPECT_EQ(load_be<uint32_t>(area.data() + 32), kExtFeatureTable);
    EXPECT_EQ(load_be<uint32_t>(area.data() + 32 + 8 + 96), kExtBitmaps);
    EXPECT_EQ(load_be<uint32_t>(area.data() + 32 + 8 + 96 + 32), 0x12345678u);
    EXPECT_EQ(*parse_header_extensions(area, 112, h), *r);
    EXPECT_EQ(*header_extensions_size(*r), a.pos() - 8);
}

TEST(Qcow2Extensions, EndMarkerStopsParsing) {
    AreaBuilder a(256);
    a.ext(kExtDataFile, "x").end().ext(kExtBackingFormat, "this-is-ignored-garbage");
    auto r = parse_header_extensions(a.bytes(), 112, plain_header());
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->data_file, "x");
    EXPECT_FALSE(r->backing_format.has_value());
}

TEST(Qcow2Extensions, AreaWithoutEndMarker) {
    // Extension data exactly filling the area: no end marker needed.
    AreaBuilder a(24);
    a.ext(0x11, std::string(16, 'a'));
    auto r = parse_header_extensions(a.bytes(), 112, plain_header());
    ASSERT_THAT(r, IsOk());
    ASSERT_EQ(r->unknown.size(), 1u);
    std::vector<std::byte> out(24);
    EXPECT_EQ(*encode_header_extensions(*r, out), 24u);
    EXPECT_EQ(out, a.bytes().data());

    // Padding may step past the end of the area (the data itself fits).
    Bytes b(13);
    b.be32(0, 0x22).be32(4, 5).str(8, "abcde");
    r = parse_header_extensions(b, 112, plain_header());
    ASSERT_THAT(r, IsOk());
    std::vector<std::byte> out2(13);
    EXPECT_EQ(*encode_header_extensions(*r, out2), 13u);
    EXPECT_EQ(out2, b.data());

    // An empty area holds no extensions.
    EXPECT_EQ(*parse_header_extensions({}, 112, plain_header()), HeaderExtensions{});
}

TEST(Qcow2Extensions, AreaBoundErrors) {
    Bytes b(20);
    b.be32(0, 0x22).be32(4, 4);  // ends at 16; 4 bytes left: no room for a header
    EXPECT_THAT(parse_header_extensions(b, 112, plain_header()),
                IsCorrupt("header extension at 0x80 is truncated"));
    Bytes c(32);
    c.be32(0, kExtDataFile).be32(4, 25);
    EXPECT_THAT(parse_header_extensions(c, 112, plain_header()),
                IsCorrupt("header extension 0x44415441 length 25 exceeds the extension area "
                          "(24 bytes left)"));
    c.be32(0, 0).be32(4, 25);  // even the end marker must fit
    EXPECT_THAT(parse_header_extensions(c, 112, plain_header()), IsCorrupt("length 25 exceeds"));
    c.be32(4, 24);
    EXPECT_THAT(parse_header_extensions(c, 112, plain_header()), IsOk());
    c.be32(0, kExtDataFile).be32(4, 0xffffffff);
    auto r = parse_header_extensions(c, 112, plain_header());
    EXPECT_THAT(r, IsCorrupt("length 4294967295 exceeds"));
    EXPECT_EQ(r.error().offset, 112u);
}

TEST(Qcow2Extensions, BackingFormatLimit) {
    AreaBuilder a(64);
    a.ext(kExtBackingFormat, std::string(16, 'f')).end();
    EXPECT_THAT(parse_header_extensions(a.bytes(), 112, plain_header()),
                IsCorrupt("backing format name length 16 exceeds limit 15"));
    AreaBuilder ok(64);
    ok.ext(kExtBackingFormat, std::string(15, 'f')).end();
    EXPECT_THAT(parse_header_extensions(ok.bytes(), 112, plain_header()), IsOk());
}

TEST(Qcow2Extensions, FeatureTableAnyLength) {
    // 48 + 8 bytes: the partial second entry reads zero-padded.
    AreaBuilder a(256);
    a.ext(kExtFeatureTable, feature_entry(0, 9, "nine") + std::string("\x01\x03part-n", 8)).end();
    auto r = parse_header_extensions(a.bytes(), 112, plain_header());
    ASSERT_THAT(r, IsOk());
    ASSERT_EQ(r->feature_table->size(), 2u);
    EXPECT_EQ((*r->feature_table)[1], (FeatureNameEntry{1, 3, "part-n"}));
    // A name using all 46 bytes has no terminator.
    AreaBuilder full(256);
    full.ext(kExtFeatureTable, feature_entry(0, 7, std::string(46, 'n'))).end();
    r = parse_header_extensions(full.bytes(), 112, plain_header());
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ((*r->feature_table)[0].name, std::string(46, 'n'));
    // Empty table.
    AreaBuilder empty(64);
    empty.ext(kExtFeatureTable, "").end();
    r = parse_header_extensions(empty.bytes(), 112, plain_header());
    ASSERT_THAT(r, IsOk());
    EXPECT_TRUE(r->feature_table.has_value());
    EXPECT_TRUE(r->feature_table->empty());
}

TEST(Qcow2Extensions, BitmapsValidatedOnlyWhenConsistent) {
    auto area = [](uint32_t nb, uint32_t reserved, uint64_t size, uint64_t offset) {
        AreaBuilder a(64);
        a.ext(kExtBitmaps, be(nb, 4) + be(reserved, 4) + be(size, 8) + be(offset, 8)).end();
        return a.bytes();
    };
    Header consistent = plain_header();
    consistent.autoclear_features = kAutoclearBitmaps;
    Header stale = plain_header();

    EXPECT_THAT(parse_header_extensions(area(1, 1, 0, 0x10000), 112, consistent),
                IsCorrupt("bitmaps extension reserved field 0x1 is not zero"));
    EXPECT_THAT(parse_header_extensions(area(0, 0, 0, 0x10000), 112, consistent),
                IsCorrupt("bitmaps extension nb_bitmaps 0 out of range 1..65535"));
    EXPECT_THAT(parse_header_extensions(area(65536, 0, 0, 0x10000), 112, consistent),
                IsCorrupt("nb_bitmaps 65536 out of range"));
    EXPECT_THAT(parse_header_extensions(area(1, 0, 0, 0x10100), 112, consistent),
                IsCorrupt("bitmap_directory_offset 0x10100 is not cluster aligned"));
    EXPECT_THAT(parse_header_extensions(area(1, 0, 67107841, 0x10000), 112, consistent),
                IsCorrupt("bitmap_directory_size 67107841 exceeds limit 67107840"));
    EXPECT_THAT(parse_header_extensions(area(1, 0, 67107840, 0x10000), 112, consistent), IsOk());

    // Without autoclear bit 0 the contents are stale: kept, not judged.
    auto r = parse_header_extensions(area(0, 7, 1ull << 40, 0x123), 112, stale);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->bitmaps, (BitmapsExtension{0, 7, 1ull << 40, 0x123}));

    // The length is checked either way.
    AreaBuilder bad(64);
    bad.ext(kExtBitmaps, std::string(16, '\0')).end();
    EXPECT_THAT(parse_header_extensions(bad.bytes(), 112, stale),
                IsCorrupt("bitmaps extension length 16, expected 24"));
}

TEST(Qcow2Extensions, CryptoHeaderPointer) {
    AreaBuilder a(64);
    a.ext(kExtCryptoHeader, be(0x20000, 8) + be(0x1000, 8)).end();
    EXPECT_THAT(parse_header_extensions(a.bytes(), 112, plain_header()),
                IsCorrupt("crypto header extension with crypt_method 0 (only luks uses it)"));
    Header luks = plain_header();
    luks.crypt_method = kCryptLuks;
    auto r = parse_header_extensions(a.bytes(), 112, luks);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->crypto, (CryptoHeaderExtension{0x20000, 0x1000}));
    std::vector<std::byte> out(64);
    ASSERT_THAT(encode_header_extensions(*r, out), IsOk());
    EXPECT_EQ(*parse_header_extensions(out, 112, luks), *r);

    AreaBuilder misaligned(64);
    misaligned.ext(kExtCryptoHeader, be(0x20200, 8) + be(0x1000, 8)).end();
    EXPECT_THAT(parse_header_extensions(misaligned.bytes(), 112, luks),
                IsCorrupt("crypto header offset 0x20200 is not cluster aligned"));
    AreaBuilder short_ext(64);
    short_ext.ext(kExtCryptoHeader, be(0x20000, 8)).end();
    EXPECT_THAT(parse_header_extensions(short_ext.bytes(), 112, luks),
                IsCorrupt("crypto header extension length 8, expected 16"));
}

TEST(Qcow2Extensions, DuplicatesKeepTheLast) {
    AreaBuilder a(128);
    a.ext(kExtBackingFormat, "raw").ext(kExtBackingFormat, "qcow2").ext(0x99, "a").ext(0x99, "b");
    a.end();
    auto r = parse_header_extensions(a.bytes(), 112, plain_header());
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->backing_format, "qcow2");
    EXPECT_EQ(r->unknown.size(), 2u);  // unknown ones are all kept, in order
}

TEST(Qcow2Extensions, EncoderErrors) {
    HeaderExtensions ext;
    ext.data_file = std::string(100, 'd');
    std::vector<std::byte> small(100);
    EXPECT_THAT(encode_header_extensions(ext, small),
                IsInvalid("header extension 0x44415441 of 100 bytes does not fit in 100 bytes"));
    std::vector<std::byte> awkward(116);  // 4 bytes left: no room for an end marker
    EXPECT_THAT(encode_header_extensions(ext, awkward), IsInvalid("no room for the end marker"));
    std::vector<std::byte> exact(108);
    EXPECT_THAT(encode_header_extensions(ext, exact), IsOk());
    HeaderExtensions end_type;
    end_type.unknown.push_back({0, {}});
    EXPECT_THAT(encode_header_extensions(end_type, small), IsInvalid("type 0 would end the list"));
}

TEST(Qcow2Extensions, FeatureNames) {
    const std::vector<FeatureNameEntry> qemu = qemu_feature_table();
    ASSERT_EQ(qemu.size(), 8u);
    EXPECT_EQ(feature_name(qemu, FeatureType::kIncompatible, 4), "extended L2 entries");
    EXPECT_EQ(feature_name(qemu, FeatureType::kCompatible, 0), "lazy refcounts");
    EXPECT_EQ(feature_name(qemu, FeatureType::kAutoclear, 1), "raw external data");
    EXPECT_EQ(feature_name(qemu, FeatureType::kIncompatible, 5), std::nullopt);

    std::vector<FeatureNameEntry> table = {
        {0, 5, "shiny feature"}, {1, 9, "not this one"}, {0, 40, "bad\x01name"}};
    EXPECT_EQ(unsupported_features_message(1ull << 5, FeatureType::kIncompatible, &table),
              "qcow2: unsupported incompatible feature: shiny feature (bit 5)");
    EXPECT_EQ(unsupported_features_message((1ull << 5) | (1ull << 9) | (1ull << 40),
                                           FeatureType::kIncompatible, &table),
              "qcow2: unsupported incompatible features: shiny feature (bit 5), unknown (bit 9), "
              "bad?name (bit 40)");
    EXPECT_EQ(unsupported_features_message(1ull << 63, FeatureType::kIncompatible, nullptr),
              "qcow2: unsupported incompatible feature: unknown (bit 63)");
    EXPECT_EQ(unsupported_features_message(1ull << 9, FeatureType::kCompatible, &table),
              "qcow2: unsupported compatible feature: not this one (bit 9)");
}

}  // namespace
}  // namespace coblock::qcow2
