// Tests of the `-o help` listings against qemu-img 7.2's output, byte for
// byte (specs/qemu-img-output.md §2).
#include "qapi/help.h"

#include <gtest/gtest.h>

namespace coblock::qapi {
namespace {

OptionField field(const char* name, FieldType type, const char* help) {
    OptionField f;
    f.name = name;
    f.type = type;
    f.help = help;
    return f;
}

// The tables are declared out of order on purpose: the listing sorts.
OptionSchema qcow2_create_schema() {
    return OptionSchema{
        "qcow2",
        {
            field("size", FieldType::kSize, "Virtual disk size"),
            field("compat", FieldType::kEnum, "Compatibility level (v2 [0.10] or v3 [1.1])"),
            field("backing_file", FieldType::kString, "File name of a base image"),
            field("backing_fmt", FieldType::kString, "Image format of the base image"),
            field("encryption", FieldType::kBool,
                  "Encrypt the image with format 'aes'. (Deprecated in favor of "
                  "encrypt.format=aes)"),
            field("encrypt.format", FieldType::kString,
                  "Encrypt the image, format choices: 'aes', 'luks'"),
            field("encrypt.key-secret", FieldType::kString,
                  "ID of secret providing qcow AES key or LUKS passphrase"),
            field("encrypt.cipher-alg", FieldType::kString, "Name of encryption cipher algorithm"),
            field("encrypt.cipher-mode", FieldType::kString, "Name of encryption cipher mode"),
            field("encrypt.ivgen-alg", FieldType::kString, "Name of IV generator algorithm"),
            field("encrypt.ivgen-hash-alg", FieldType::kString,
                  "Name of IV generator hash algorithm"),
            field("encrypt.hash-alg", FieldType::kString, "Name of encryption hash algorithm"),
            field("encrypt.iter-time", FieldType::kInt, "Time to spend in PBKDF in milliseconds"),
            field("cluster_size", FieldType::kSize, "qcow2 cluster size"),
            field("preallocation", FieldType::kEnum,
                  "Preallocation mode (allowed values: off, metadata, falloc, full)"),
            field("lazy_refcounts", FieldType::kBool, "Postpone refcount updates"),
            field("refcount_bits", FieldType::kUint, "Width of a reference count entry in bits"),
            field("data_file", FieldType::kString, "File name of an external data file"),
            field("data_file_raw", FieldType::kBool,
                  "The external data file must stay valid as a raw image"),
            field("compression_type", FieldType::kEnum,
                  "Compression method used for image cluster compression"),
            field("extended_l2", FieldType::kBool, "Extended L2 tables"),
        }};
}

OptionSchema file_create_schema() {
    return OptionSchema{
        "file",
        {
            field("size", FieldType::kSize, "Virtual disk size"),
            field("nocow", FieldType::kBool, "Turn off copy-on-write (valid only on btrfs)"),
            field("preallocation", FieldType::kEnum,
                  "Preallocation mode (allowed values: off, falloc, full)"),
            field("extent_size_hint", FieldType::kSize,
                  "Extent size hint for the image file, 0 to disable"),
        }};
}

TEST(HelpTest, LineLayout) {
    EXPECT_EQ(option_help_line(field("size", FieldType::kSize, "Virtual disk size")),
              "  size=<size>            - Virtual disk size");
    // Exactly 24 characters before the dash: no padding.
    EXPECT_EQ(option_help_line(field("extent_size_hint", FieldType::kSize, "x")),
              "  extent_size_hint=<size> - x");
    EXPECT_EQ(option_help_line(field("compression_type", FieldType::kString, "x")),
              "  compression_type=<str> - x");
    EXPECT_EQ(option_help_line(field("n", FieldType::kBool, "")), "  n=<bool (on/off)>");
    EXPECT_STREQ(option_type_name(FieldType::kInt), "num");
    EXPECT_STREQ(option_type_name(FieldType::kUint), "num");
    EXPECT_STREQ(option_type_name(FieldType::kEnum), "str");
}

TEST(HelpTest, Qcow2CreateWithoutFilename) {
    // $ qemu-img create -f qcow2 -o help
    EXPECT_EQ(format_create_help("qcow2", qcow2_create_schema(), nullptr),
              "Supported qcow2 options:\n"
              "  backing_file=<str>     - File name of a base image\n"
              "  backing_fmt=<str>      - Image format of the base image\n"
              "  cluster_size=<size>    - qcow2 cluster size\n"
              "  compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])\n"
              "  compression_type=<str> - Compression method used for image cluster compression\n"
              "  data_file=<str>        - File name of an external data file\n"
              "  data_file_raw=<bool (on/off)> - The external data file must stay valid as a raw "
              "image\n"
              "  encrypt.cipher-alg=<str> - Name of encryption cipher algorithm\n"
              "  encrypt.cipher-mode=<str> - Name of encryption cipher mode\n"
              "  encrypt.format=<str>   - Encrypt the image, format choices: 'aes', 'luks'\n"
              "  encrypt.hash-alg=<str> - Name of encryption hash algorithm\n"
              "  encrypt.iter-time=<num> - Time to spend in PBKDF in milliseconds\n"
              "  encrypt.ivgen-alg=<str> - Name of IV generator algorithm\n"
              "  encrypt.ivgen-hash-alg=<str> - Name of IV generator hash algorithm\n"
              "  encrypt.key-secret=<str> - ID of secret providing qcow AES key or LUKS "
              "passphrase\n"
              "  encryption=<bool (on/off)> - Encrypt the image with format 'aes'. (Deprecated "
              "in favor of encrypt.format=aes)\n"
              "  extended_l2=<bool (on/off)> - Extended L2 tables\n"
              "  lazy_refcounts=<bool (on/off)> - Postpone refcount updates\n"
              "  preallocation=<str>    - Preallocation mode (allowed values: off, metadata, "
              "falloc, full)\n"
              "  refcount_bits=<num>    - Width of a reference count entry in bits\n"
              "  size=<size>            - Virtual disk size\n"
              "\n"
              "The protocol level may support further options.\n"
              "Specify the target filename to include those options.\n");
}

TEST(HelpTest, RawCreateWithFilenameMergesProtocolOptions) {
    // $ qemu-img create -f raw -o help x.img 1M
    OptionSchema raw{"raw", {field("size", FieldType::kSize, "Virtual disk size")}};
    OptionSchema file = file_create_schema();
    EXPECT_EQ(format_create_help("raw", raw, &file),
              "Supported options:\n"
              "  extent_size_hint=<size> - Extent size hint for the image file, 0 to disable\n"
              "  nocow=<bool (on/off)>  - Turn off copy-on-write (valid only on btrfs)\n"
              "  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)\n"
              "  size=<size>            - Virtual disk size\n");
}

TEST(HelpTest, FormatOptionsWinOverProtocolOnes) {
    OptionSchema qcow2 = qcow2_create_schema();
    OptionSchema file = file_create_schema();
    std::string text = format_create_help("qcow2", qcow2, &file);
    EXPECT_NE(text.find("  preallocation=<str>    - Preallocation mode (allowed values: off, "
                        "metadata, falloc, full)\n"),
              std::string::npos);
    EXPECT_EQ(text.find("(allowed values: off, falloc, full)"), std::string::npos);
    EXPECT_NE(text.find("  nocow=<bool (on/off)>  - Turn off"), std::string::npos);
}

TEST(HelpTest, SortsWholeLinesLikeStrcmp) {
    OptionSchema schema{
        "x",
        {field("a=", FieldType::kString, "h"), field("a", FieldType::kString, "h"),
         field("a.b", FieldType::kString, "h"), field("B", FieldType::kString, "h")}};
    // '.' (0x2e) < '=' (0x3d): "a.b=" sorts before "a=" although "a" < "a.b".
    EXPECT_EQ(format_option_lines({&schema}),
              "  B=<str>                - h\n"
              "  a.b=<str>              - h\n"
              "  a=<str>                - h\n"
              "  a==<str>               - h\n");
}

TEST(HelpTest, AmendAndEmptyListings) {
    OptionSchema amend{"qcow2", {field("size", FieldType::kSize, "Virtual disk size")}};
    EXPECT_EQ(format_amend_help("qcow2", amend),
              "Amend options for 'qcow2':\n"
              "  size=<size>            - Virtual disk size\n");
    OptionSchema none{"nothing", {}};
    EXPECT_EQ(format_option_lines({&none}), "There are no options for nothing.\n");
}

}  // namespace
}  // namespace coblock::qapi
