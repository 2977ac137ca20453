// Tests of the value parsers (QEMU's strtosz/strtou64/bool rules and error
// texts), typed schemas bound by member pointers, and the unknown-option
// checks. Expected texts come from qemu-img/qemu-io 7.2 (command in the
// comment).
#include "qapi/schema.h"

#include <gtest/gtest.h>

#include "qapi/keyval.h"

namespace coblock::qapi {
namespace {

constexpr const char* kSizeHint =
    "\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively.";

template <class T>
std::string error_of(const Result<T>& result) {
    EXPECT_FALSE(result.ok());
    return result.ok() ? std::string("(no error)") : result.error().message;
}

// ------------------------------------------------------------------ sizes

TEST(StrtoszTest, AcceptsQemuSyntax) {
    struct Case {
        const char* text;
        uint64_t value;
    };
    const Case cases[] = {
        {"0", 0},
        {"512", 512},
        {"1k", 1024},
        {"1K", 1024},
        {"64k", 65536},
        {"1M", 1 << 20},
        {"1G", 1ull << 30},
        {"2T", 2ull << 40},
        {"1P", 1ull << 50},
        {"15E", 15ull << 60},
        {"100b", 100},
        {"100B", 100},
        {"1.5G", 1610612736},
        {"1.k", 1024},  // a '.' without digits needs the suffix only
        {"1.0", 1},     // a zero fraction needs no suffix
        {"0.5k", 512},
        {"1.0009765625k", 1025},
        {"1.00048828125k", 1025},  // exactly 1024.5: rounds half up
        {"0x200", 512},
        {"0x1k", 1024},  // QEMU 7.2 warns but accepts
        {" 5k", 5120},
        {"+5k", 5120},
        {"18446744073709551615", UINT64_MAX},
        {"0.5E", 1ull << 59},
    };
    for (const auto& c : cases) {
        auto result = strtosz(c.text);
        ASSERT_TRUE(result.ok()) << c.text << ": " << result.error().message;
        EXPECT_EQ(*result, c.value) << c.text;
    }
    bool hex_suffix = false;
    EXPECT_TRUE(strtosz("0x1k", &hex_suffix).ok());
    EXPECT_TRUE(hex_suffix);
}

TEST(StrtoszTest, RejectsWhatQemuRejects) {
    // qemu-io --image-opts driver=null-co,size=<text> fails on each of these.
    for (const char* text :
         {"", "abc", "-1", "-5", "1.5", "1.5b", ".5k", "1kB", "1e3", "1.5e1k", "0x1.8k", "on",
          "1 k", "5k ", "0x", "1.5.k", "99999999999999999999k"}) {
        auto result = strtosz(text);
        EXPECT_FALSE(result.ok()) << text;
        if (!result.ok()) {
            EXPECT_EQ(result.error().kind, ErrorKind::kInvalidArgument) << text;
        }
    }
    // Too large: "Value '16E' is out of range".
    for (const char* text : {"16E", "18446744073709551616", "17179869184G"}) {
        auto result = strtosz(text);
        ASSERT_FALSE(result.ok()) << text;
        EXPECT_EQ(result.error().kind, ErrorKind::kOutOfRange) << text;
    }
    EXPECT_EQ(error_of(strtosz("x")), "invalid size 'x'");
    EXPECT_EQ(error_of(strtosz("16E")), "size '16E' is too large");
    EXPECT_FALSE(strtosz(std::string_view("1\0k", 3)).ok());
}

TEST(SizeOptionTest, MessagesMatchQemu) {
    // qemu-img create -f qcow2 -o cluster_size=abc c.qcow2 1M
    EXPECT_EQ(error_of(parse_size_option("cluster_size", "abc")),
              std::string("Parameter 'cluster_size' expects a non-negative number below 2^64") +
                  kSizeHint);
    // qemu-io --image-opts driver=null-co,size=16E
    EXPECT_EQ(error_of(parse_size_option("size", "16E")),
              "Value '16E' is out of range for parameter 'size'");
    EXPECT_EQ(*parse_size_option("size", "1.5G"), 1610612736u);
}

// ---------------------------------------------------------------- numbers

TEST(NumberOptionTest, FollowsStrtou64BaseZero) {
    EXPECT_EQ(*parse_uint_option("n", "16"), 16u);
    EXPECT_EQ(*parse_uint_option("n", "0x10"), 16u);
    EXPECT_EQ(*parse_uint_option("n", "010"), 8u);
    EXPECT_EQ(*parse_uint_option("n", " +5"), 5u);
    EXPECT_EQ(*parse_uint_option("n", "-1"), UINT64_MAX);  // wraps, as QEMU's
    // qemu-img create -f qcow2 -o refcount_bits=abc
    EXPECT_EQ(error_of(parse_uint_option("refcount_bits", "abc")),
              "Parameter 'refcount_bits' expects a number");
    EXPECT_EQ(error_of(parse_uint_option("n", "")), "Parameter 'n' expects a number");
    EXPECT_EQ(error_of(parse_uint_option("n", "12abc")), "Parameter 'n' expects a number");
    EXPECT_EQ(error_of(parse_uint_option("n", "099")), "Parameter 'n' expects a number");
    // qemu-io --image-opts driver=null-co,latency-ns=99999999999999999999
    EXPECT_EQ(error_of(parse_uint_option("latency-ns", "99999999999999999999")),
              "Value '99999999999999999999' is too large for parameter 'latency-ns'");
    // Trailing text beats the range error, as in check_strtox_error.
    EXPECT_EQ(error_of(parse_uint_option("n", "99999999999999999999x")),
              "Parameter 'n' expects a number");
}

TEST(NumberOptionTest, SignedVariant) {
    EXPECT_EQ(*parse_int_option("n", "-0x10"), -16);
    EXPECT_EQ(*parse_int_option("n", "9223372036854775807"), INT64_MAX);
    EXPECT_EQ(error_of(parse_int_option("n", "9223372036854775808")),
              "Value '9223372036854775808' is too large for parameter 'n'");
    EXPECT_EQ(error_of(parse_int_option("n", "x")), "Parameter 'n' expects a number");
}

TEST(BoolOptionTest, AcceptsQapiBoolWords) {
    // qemu-io --image-opts driver=null-co,read-zeroes=<word>
    for (const char* word : {"on", "yes", "true", "y"})
        EXPECT_TRUE(*parse_bool_option("b", word));
    for (const char* word : {"off", "no", "false", "n"})
        EXPECT_FALSE(*parse_bool_option("b", word));
    for (const char* word : {"ON", "1", "0", "maybe", ""}) {
        // qemu-img create -f qcow2 -o lazy_refcounts=maybe
        EXPECT_EQ(error_of(parse_bool_option("lazy_refcounts", word)),
                  "Parameter 'lazy_refcounts' expects 'on' or 'off'");
    }
}

TEST(EnumOptionTest, BothQemuWordings) {
    std::vector<std::string> choices{"threads", "native", "io_uring"};
    EXPECT_EQ(*parse_enum_option("aio", "native", choices), 1u);
    // qemu-img info --object secret,id=s0,data=x,format=bogus
    EXPECT_EQ(error_of(parse_enum_option("format", "bogus", {"raw", "base64"})),
              "Parameter 'format' does not accept value 'bogus'");
    // qemu-io --image-opts driver=raw,file.driver=file,file.filename=x.img,file.aio=bogus
    EXPECT_EQ(error_of(parse_enum_option("aio", "bogus", choices, EnumErrorStyle::kEnumParse)),
              "invalid parameter value: bogus");
}

// ------------------------------------------------------------ typed schema

enum class Aio { kThreads, kNative };

struct NullCoOptions {
    uint64_t size = 1ull << 30;
    bool read_zeroes = true;
    uint64_t latency_ns = 0;
};

const auto kNullCoSchema = Schema<NullCoOptions>(
    "null-co",
    {
        size_field("size", &NullCoOptions::size, "1G", "size of the null block device"),
        bool_field("read-zeroes", &NullCoOptions::read_zeroes, "on", "return zeroes when read"),
        uint_field("latency-ns", &NullCoOptions::latency_ns, "0",
                   "nanoseconds of latency per request"),
    });

struct FileOptions {
    std::string filename;
    Aio aio = Aio::kThreads;
    std::optional<uint64_t> extent_size_hint;
    std::optional<bool> read_only;
    std::optional<std::string> locking;
    int64_t offset = -1;
};

const auto kFileSchema = Schema<FileOptions>(
    "file",
    {
        string_field("filename", &FileOptions::filename, kNoDefault, "file name").required(),
        enum_field("aio", &FileOptions::aio, {{"threads", Aio::kThreads}, {"native", Aio::kNative}},
                   "threads", "host AIO implementation", EnumErrorStyle::kEnumParse),
        size_field("extent_size_hint", &FileOptions::extent_size_hint, kNoDefault,
                   "Extent size hint for the image file, 0 to disable"),
        bool_field("read-only", &FileOptions::read_only, kNoDefault, "read-only"),
        string_field("locking", &FileOptions::locking, kNoDefault, "file locking mode"),
        int_field("offset", &FileOptions::offset, kNoDefault, "signed offset"),
    });

TEST(SchemaTest, DescriptorListsFieldsInOrder) {
    const OptionSchema& d = kNullCoSchema.descriptor();
    EXPECT_EQ(d.name, "null-co");
    ASSERT_EQ(d.fields.size(), 3u);
    EXPECT_EQ(d.fields[0].name, "size");
    EXPECT_EQ(d.fields[0].type, FieldType::kSize);
    EXPECT_EQ(d.fields[0].default_text, "1G");
    EXPECT_EQ(d.fields[1].type, FieldType::kBool);
    EXPECT_EQ(d.fields[2].help, "nanoseconds of latency per request");
    EXPECT_EQ(d.find("latency-ns"), &d.fields[2]);
    EXPECT_EQ(d.find("bogus"), nullptr);
    const OptionField* aio = kFileSchema.descriptor().find("aio");
    ASSERT_NE(aio, nullptr);
    EXPECT_EQ(aio->choices, (std::vector<std::string>{"threads", "native"}));
    EXPECT_TRUE(kFileSchema.descriptor().find("filename")->required);
}

TEST(SchemaTest, CheckSchemaFindsTableMistakes) {
    EXPECT_TRUE(check_schema(kNullCoSchema.descriptor()).ok());
    EXPECT_TRUE(check_schema(kFileSchema.descriptor()).ok());
    OptionSchema bad_default = kNullCoSchema.descriptor();
    bad_default.fields[0].default_text = "1X";
    Status status = check_schema(bad_default);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().kind, ErrorKind::kInternal);
    EXPECT_EQ(status.error().message.substr(0, 50),
              "schema 'null-co' field 'size' has a bad default: P");
    OptionSchema twice = kNullCoSchema.descriptor();
    twice.fields.push_back(twice.fields[0]);
    EXPECT_EQ(check_schema(twice).error().message,
              "schema 'null-co' field 'size' is declared twice");
    OptionSchema enum_without_choices{"x", {kFileSchema.descriptor().fields[1]}};
    enum_without_choices.fields[0].choices.clear();
    EXPECT_EQ(check_schema(enum_without_choices).error().message,
              "schema 'x' field 'aio' is an enum without choices");
}

TEST(SchemaTest, DefaultsMatchStructInitialisers) {
    OptionsTree empty;
    auto parsed = kNullCoSchema.parse(empty);
    ASSERT_TRUE(parsed.ok());
    NullCoOptions defaults;
    EXPECT_EQ(parsed->size, defaults.size);
    EXPECT_EQ(parsed->read_zeroes, defaults.read_zeroes);
    EXPECT_EQ(parsed->latency_ns, defaults.latency_ns);
}

TEST(SchemaTest, ParsesAndConsumesOwnKeysOnly) {
    OptionsTree tree =
        *parse_qemu_opts("driver=null-co,size=1.5k,read-zeroes=off,latency-ns=0x10,x=1");
    auto parsed = kNullCoSchema.parse(tree);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->size, 1536u);
    EXPECT_FALSE(parsed->read_zeroes);
    EXPECT_EQ(parsed->latency_ns, 16u);
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"driver", "x"}));
}

TEST(SchemaTest, IllTypedValuesNameTheKey) {
    // qemu-io --image-opts driver=null-co,size=abc (QEMU 7.2 aborts there;
    // this is the message it reports).
    OptionsTree tree{{"size", "abc"}};
    EXPECT_EQ(error_of(kNullCoSchema.parse(tree)),
              std::string("Parameter 'size' expects a non-negative number below 2^64") + kSizeHint);
    tree = OptionsTree{{"read-zeroes", "1"}};
    EXPECT_EQ(error_of(kNullCoSchema.parse(tree)), "Parameter 'read-zeroes' expects 'on' or 'off'");
    tree = OptionsTree{{"filename", "a"}, {"aio", "bogus"}};
    EXPECT_EQ(error_of(kFileSchema.parse(tree)), "invalid parameter value: bogus");
    tree = OptionsTree{{"aio", "native"}};
    EXPECT_EQ(error_of(kFileSchema.parse(tree)), "Parameter 'filename' is missing");
}

TEST(SchemaTest, OptionalMembersStayEmptyUnlessGiven) {
    OptionsTree tree{{"filename", "a.img"}, {"read-only", "on"}, {"offset", "-512"}};
    auto parsed = kFileSchema.parse(tree);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->filename, "a.img");
    EXPECT_EQ(parsed->aio, Aio::kThreads);
    EXPECT_FALSE(parsed->extent_size_hint.has_value());
    EXPECT_EQ(parsed->read_only, true);
    EXPECT_FALSE(parsed->locking.has_value());
    EXPECT_EQ(parsed->offset, -512);
    EXPECT_TRUE(tree.empty());
}

TEST(SchemaTest, JsonKindsAreAcceptedAndNullMeansAbsent) {
    // qemu-io 'json:{"driver":"null-co","size":1024,"read-zeroes":true}' and
    // '..."latency-ns": null' both open.
    OptionsTree tree = *parse_json_options(
        R"({"driver":"null-co","size":1024,"read-zeroes":false,"latency-ns":null,"x":{}})");
    auto parsed = kNullCoSchema.parse(tree);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->size, 1024u);
    EXPECT_FALSE(parsed->read_zeroes);
    EXPECT_EQ(parsed->latency_ns, 0u);
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"driver", "x"}));
    // json:{"driver":"null-co","size":1024.5} is ill-typed, as in QEMU.
    tree = *parse_json_options(R"({"size":1024.5})");
    EXPECT_FALSE(kNullCoSchema.parse(tree).ok());
}

TEST(SchemaTest, SerialisesBackToTypedJsonAndRoundTrips) {
    FileOptions options;
    options.filename = "a.img";
    options.aio = Aio::kNative;
    options.extent_size_hint = 1 << 20;
    options.offset = -3;
    OptionsTree tree = kFileSchema.to_tree(options);
    EXPECT_EQ(kFileSchema.to_json(options).dump(),
              R"({"filename":"a.img","aio":"native","extent_size_hint":1048576,"offset":-3})");
    auto parsed = kFileSchema.parse(tree);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->aio, Aio::kNative);
    EXPECT_EQ(parsed->extent_size_hint, 1u << 20);
    EXPECT_EQ(parsed->offset, -3);
    EXPECT_EQ(kNullCoSchema.to_json(NullCoOptions{}).dump(),
              R"({"size":1073741824,"read-zeroes":true,"latency-ns":0})");
}

TEST(SchemaTest, NormalizeValueGivesCanonicalText) {
    const OptionField& size = kNullCoSchema.descriptor().fields[0];
    EXPECT_EQ(*normalize_value(size, "64k"), (OptionValue{"65536", ValueKind::kNumber}));
    const OptionField& zeroes = kNullCoSchema.descriptor().fields[1];
    EXPECT_EQ(*normalize_value(zeroes, "yes"), (OptionValue{"on", ValueKind::kBool}));
}

// --------------------------------------------------------- unknown options

TEST(UnknownOptionTest, StrictParseUsesQemuImgWording) {
    // qemu-img create -f qcow2 -o bogus=1 c.qcow2 1M
    EXPECT_EQ(error_of(kNullCoSchema.parse_strict(OptionsTree{{"size", "1M"}, {"bogus", "1"}})),
              "Invalid parameter 'bogus'");
    // qemu-img create -f qcow2 -o =x c.qcow2 1M
    EXPECT_EQ(error_of(kNullCoSchema.parse_strict(OptionsTree{{"", "x"}})), "Invalid parameter ''");
    OptionsTree tree{{"size", "1M"}, {"extent_size_hint", "0"}};
    EXPECT_TRUE(
        check_known_keys(tree, {&kNullCoSchema.descriptor(), &kFileSchema.descriptor()}).ok());
    EXPECT_FALSE(check_known_keys(tree, {&kNullCoSchema.descriptor()}).ok());
}

TEST(UnknownOptionTest, LeftoverKeysUseBlockLayerWording) {
    EXPECT_TRUE(check_all_consumed(OptionsTree{}, DriverClass::kFormat, "raw").ok());
    // qemu-io -c quit --image-opts driver=raw,file.driver=file,file.filename=x.img,bogus=1
    Status format = check_all_consumed(OptionsTree{{"bogus", "1"}}, DriverClass::kFormat, "raw");
    ASSERT_FALSE(format.ok());
    EXPECT_EQ(format.error().message, "Block format 'raw' does not support the option 'bogus'");
    // ...,file.bogus=1
    Status protocol =
        check_all_consumed(OptionsTree{{"bogus", "1"}}, DriverClass::kProtocol, "file");
    ASSERT_FALSE(protocol.ok());
    EXPECT_EQ(protocol.error().message, "Block protocol 'file' doesn't support the option 'bogus'");
    // qemu-io 'json:{"driver":"null-co","size":[1,2]}' names 'size.1':
    // QEMU reports the first key in QDict order, not in string order.
    Status list = check_all_consumed(*parse_json_options(R"({"size":[1,2]})"),
                                     DriverClass::kProtocol, "null-co");
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(list.error().message, "Block protocol 'null-co' doesn't support the option 'size.1'");
}

}  // namespace
}  // namespace coblock::qapi
