// Tests of the option-string parsers (QemuOpts and keyval), json: filenames
// and the protocol split. Expected errors are the texts qemu-img/qemu-io 7.2
// print for the same input (see the comments for the command used).
#include "qapi/keyval.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace coblock::qapi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

OptionsTree must(Result<OptionsTree> result) {
    EXPECT_TRUE(result.ok()) << result.error().message;
    return result.ok() ? std::move(result).value() : OptionsTree{};
}

std::string error_of(const Result<OptionsTree>& result) {
    EXPECT_FALSE(result.ok());
    return result.ok() ? std::string("(no error)") : result.error().message;
}

// ---------------------------------------------------------------- QemuOpts

TEST(QemuOptsTest, ParsesDottedKeysInOrder) {
    OptionsTree tree = must(parse_qemu_opts("driver=raw,file.driver=file,file.filename=a.img"));
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"driver", "file.driver", "file.filename"}));
    EXPECT_EQ(tree.get("file.filename"), "a.img");
}

TEST(QemuOptsTest, DoubleCommaEscapesInValues) {
    // qemu-io --image-opts 'driver=raw,...,file.filename=a,,b.img' opens "a,b.img".
    EXPECT_EQ(must(parse_qemu_opts("filename=a,,b.img")).get("filename"), "a,b.img");
    EXPECT_EQ(must(parse_qemu_opts("filename=a,,b.img,")).get("filename"), "a,b.img");
    // ...,file.filename=x.img,, and ,,, both open "x.img,".
    EXPECT_EQ(must(parse_qemu_opts("filename=x.img,,")).get("filename"), "x.img,");
    EXPECT_EQ(must(parse_qemu_opts("filename=x.img,,,")).get("filename"), "x.img,");
    // 'driver=raw,,file.driver=file,...' is "Unknown driver 'raw,file.driver=file'".
    EXPECT_EQ(must(parse_qemu_opts("driver=raw,,file.driver=file,x=1")).get("driver"),
              "raw,file.driver=file");
}

TEST(QemuOptsTest, LastDuplicateWinsAtFirstPosition) {
    // qemu-img create -o cluster_size=64k,cluster_size=128k uses 131072.
    OptionsTree tree = must(parse_qemu_opts("cluster_size=64k,size=1M,cluster_size=128k"));
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"cluster_size", "size"}));
    EXPECT_EQ(tree.get("cluster_size"), "128k");
}

TEST(QemuOptsTest, BareWordsAreFlags) {
    std::vector<std::string> warnings;
    OptionsTree tree = must(parse_qemu_opts("read-only,nocow,help,delay,nodelay", {}, &warnings));
    EXPECT_EQ(tree.get("read-only"), "on");
    EXPECT_EQ(tree.get("cow"), "off");
    EXPECT_EQ(tree.get("help"), "on");
    EXPECT_EQ(tree.get("delay"), "off");  // nodelay came last
    // qemu-io --image-opts '...,read-only' / '...,noread-only'.
    EXPECT_THAT(warnings, ElementsAre("short-form boolean option 'read-only' deprecated\n"
                                      "Please use read-only=on instead",
                                      "short-form boolean option 'nocow' deprecated\n"
                                      "Please use cow=off instead",
                                      "short-form boolean option 'delay' deprecated\n"
                                      "Please use nodelay=off instead",
                                      "short-form boolean option 'nodelay' deprecated\n"
                                      "Please use nodelay=on instead"));
}

TEST(QemuOptsTest, ImpliedKeyTakesBareFirstElementWithEscapes) {
    OptionsTree tree = must(parse_qemu_opts("a,,b,id=x,c", "qom-type"));
    EXPECT_EQ(tree.get("qom-type"), "a,b");
    EXPECT_EQ(tree.get("id"), "x");
    EXPECT_EQ(tree.get("c"), "on");
    // Only the first element; an explicit first key is just a key.
    EXPECT_EQ(must(parse_qemu_opts("qom-type=s,x", "qom-type")).get("x"), "on");
}

TEST(QemuOptsTest, EmptyKeysAndTextAreKept) {
    // qemu-img create -o =x reports "Invalid parameter ''" later, on validation.
    EXPECT_EQ(must(parse_qemu_opts("=x")).get(""), "x");
    EXPECT_TRUE(must(parse_qemu_opts("")).empty());
    EXPECT_EQ(must(parse_qemu_opts("a=")).get("a"), "");
}

TEST(QemuOptsTest, HelpOptionDetection) {
    EXPECT_TRUE(has_help_option("help"));
    EXPECT_TRUE(has_help_option("cluster_size=4k,?"));
    EXPECT_FALSE(has_help_option("backing_file=help"));
    EXPECT_FALSE(has_help_option("a=x,,help"));
    EXPECT_TRUE(is_help_option("?"));
    EXPECT_FALSE(is_help_option("Help"));
}

// ------------------------------------------------------------------ keyval

TEST(KeyvalTest, ParsesWithImpliedKey) {
    // qemu-img info --object secret,id=s0,data=a,,b
    OptionsTree tree = must(parse_keyval("secret,id=s0,data=a,,b,", "qom-type"));
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"qom-type", "id", "data"}));
    EXPECT_EQ(tree.get("qom-type"), "secret");
    EXPECT_EQ(tree.get("data"), "a,b");
    EXPECT_EQ(must(parse_keyval("qom-type=secret,id=s0", "qom-type")).get("qom-type"), "secret");
}

TEST(KeyvalTest, ErrorsMatchQemu) {
    // Each line: qemu-img info --object <text> x.img
    EXPECT_EQ(error_of(parse_keyval("secret,id=s0,data", "qom-type")),
              "Expected '=' after parameter 'data'");
    EXPECT_EQ(error_of(parse_keyval("secret,secret", "qom-type")),
              "Expected '=' after parameter 'secret'");
    EXPECT_EQ(error_of(parse_keyval("secret,id=s0,da$ta=x", "qom-type")),
              "Invalid parameter 'da$ta'");
    EXPECT_EQ(error_of(parse_keyval(",secret", "qom-type")), "Invalid parameter ''");
    EXPECT_EQ(error_of(parse_keyval("secret,,id=1", "qom-type")), "Invalid parameter ''");
    EXPECT_EQ(error_of(parse_keyval("secret,=1", "qom-type")), "Invalid parameter ''");
    EXPECT_EQ(error_of(parse_keyval("secret,a..b=1", "qom-type")), "Invalid parameter 'a..b'");
    EXPECT_EQ(error_of(parse_keyval("secret,.a=1", "qom-type")), "Invalid parameter '.a'");
    EXPECT_EQ(error_of(parse_keyval("secret,a.=1", "qom-type")), "Invalid parameter 'a.'");
    EXPECT_EQ(error_of(parse_keyval("secret,0=1", "qom-type")), "Invalid parameter '0'");
    EXPECT_EQ(error_of(parse_keyval("secret,id=s0,data=x,a.b=1,a=2", "qom-type")),
              "Parameters 'a.*' used inconsistently");
    EXPECT_EQ(error_of(parse_keyval("secret,id=s0,data=x,a=2,a.b=1", "qom-type")),
              "Parameters 'a.*' used inconsistently");
    EXPECT_EQ(error_of(parse_keyval("x.a=1,x.a.b=2")), "Parameters 'x.a.*' used inconsistently");
}

TEST(KeyvalTest, KeysAllowIndexesDownstreamNamesAndLastDuplicate) {
    OptionsTree tree = must(parse_keyval("server.0.host=a,server.1.host=b,__com.x_y=1,id=1,id=2"));
    EXPECT_EQ(tree.get("server.1.host"), "b");
    EXPECT_EQ(tree.get("__com.x_y"), "1");
    EXPECT_EQ(tree.get("id"), "2");
    EXPECT_EQ(error_of(parse_keyval("server.1x=a")), "Invalid parameter 'server.1x'");
}

TEST(KeyvalTest, FragmentLengthLimit) {
    std::string long_name(128, 'a');
    EXPECT_EQ(error_of(parse_keyval(long_name + "=1")),
              "Parameter '" + long_name + "' is too long");
    EXPECT_EQ(error_of(parse_keyval("x." + long_name + "=1")),
              "Parameter fragment '" + long_name + "' is too long");
    EXPECT_TRUE(parse_keyval(std::string(127, 'a') + "=1").ok());
}

TEST(KeyvalTest, HelpIsReportedOnlyWhenAsked) {
    bool help = false;
    OptionsTree tree = must(parse_keyval("secret,help", "qom-type", &help));
    EXPECT_TRUE(help);
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"qom-type"}));
    help = false;
    must(parse_keyval("help", "qom-type", &help));
    EXPECT_TRUE(help);
    EXPECT_EQ(error_of(parse_keyval("a=1,help")), "Expected '=' after parameter 'help'");
}

// -------------------------------------------------------------------- json

TEST(JsonOptionsTest, FlattensNestedObjectsAndArrays) {
    OptionsTree tree = must(parse_filename_or_options(
        R"(json:{"driver":"qcow2","file":{"driver":"file","filename":"a.qcow2"},)"
        R"("backing":null,"n":-3,"u":18446744073709551615,"f":1024.5,"ro":true,"rw":false,)"
        R"("list":[1,{"x":"y"}],"e":{},"l":[]})"));
    EXPECT_EQ(tree.keys(),
              (std::vector<std::string>{"driver", "file.driver", "file.filename", "backing", "n",
                                        "u", "f", "ro", "rw", "list.0", "list.1.x", "e", "l"}));
    EXPECT_EQ(*tree.find("backing"), (OptionValue{"", ValueKind::kNull}));
    EXPECT_EQ(*tree.find("n"), (OptionValue{"-3", ValueKind::kNumber}));
    EXPECT_EQ(*tree.find("u"), (OptionValue{"18446744073709551615", ValueKind::kNumber}));
    EXPECT_EQ(*tree.find("f"), (OptionValue{"1024.5", ValueKind::kNumber}));
    EXPECT_EQ(*tree.find("ro"), (OptionValue{"on", ValueKind::kBool}));
    EXPECT_EQ(*tree.find("rw"), (OptionValue{"off", ValueKind::kBool}));
    EXPECT_EQ(tree.find("e")->kind, ValueKind::kEmptyObject);
    EXPECT_EQ(tree.find("l")->kind, ValueKind::kEmptyArray);
}

TEST(JsonOptionsTest, RoundTripsThroughToJson) {
    std::string text =
        R"({"driver":"qcow2","file":{"driver":"file","filename":"a.qcow2"},"backing":null,)"
        R"("n":-3,"ro":true,"list":[1,{"x":"y"}],"e":{},"l":[]})";
    EXPECT_EQ(must(parse_json_options(text)).to_json().dump(), text);
}

TEST(JsonOptionsTest, AcceptsSingleQuotedStrings) {
    // qemu-io "json:{'driver':'raw','file':{'driver':'file','filename':'x.img'}}" opens x.img.
    OptionsTree tree = must(parse_json_options(
        R"({'driver':'raw','file':{'driver':'file','filename':'x"y\'z'}, "q": "it's"})"));
    EXPECT_EQ(tree.get("driver"), "raw");
    EXPECT_EQ(tree.get("file.filename"), "x\"y'z");
    EXPECT_EQ(tree.get("q"), "it's");
}

TEST(JsonOptionsTest, LaterOfNestedAndDottedKeyWins) {
    OptionsTree tree = must(parse_json_options(
        R"({"driver":"raw","file.filename":"y.img","file":{"driver":"file","filename":"x.img"}})"));
    EXPECT_EQ(tree.get("file.filename"), "x.img");
}

TEST(JsonOptionsTest, ErrorsMatchQemu) {
    // qemu-io -c quit 'json:...' prints "can't open device <name>: <message>".
    EXPECT_EQ(error_of(parse_filename_or_options("json:")),
              "Could not parse the JSON options: Expecting a JSON value");
    EXPECT_EQ(error_of(parse_filename_or_options("json:[1]")), "Invalid JSON object given");
    EXPECT_EQ(error_of(parse_filename_or_options("json:\"x\"")), "Invalid JSON object given");
    EXPECT_EQ(error_of(parse_filename_or_options(R"(json:{"driver":"raw"} trailing)")),
              "Could not parse the JSON options: Expecting at most one JSON value");
    EXPECT_EQ(error_of(parse_filename_or_options(R"(json:{"driver":"raw","driver":"raw"})")),
              "Could not parse the JSON options: JSON parse error, duplicate key");
    EXPECT_EQ(error_of(parse_filename_or_options(R"(json:{"a":{"x":1,"x":2}})")),
              "Could not parse the JSON options: JSON parse error, duplicate key");
    // Same key in different objects is fine.
    EXPECT_TRUE(parse_json_options(R"({"a":{"x":1},"b":{"x":2},"x":3})").ok());
    // QEMU: "JSON parse error, invalid keyword 'bad'"; ours names the
    // position and token instead.
    std::string bad = error_of(parse_filename_or_options("json:{bad"));
    EXPECT_THAT(bad, HasSubstr("Could not parse the JSON options: JSON parse error, "));
    EXPECT_THAT(bad, HasSubstr("column"));
    EXPECT_THAT(error_of(parse_json_options(R"({"driver":"raw",})")),
                HasSubstr("JSON parse error"));
}

TEST(JsonOptionsTest, PlainFilenamesBecomeFilenameKey) {
    OptionsTree tree = must(parse_filename_or_options("null-co://"));
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"filename"}));
    EXPECT_EQ(tree.get("filename"), "null-co://");
    EXPECT_EQ(must(parse_filename_or_options("JSON:{}")).get("filename"), "JSON:{}");
}

// ---------------------------------------------------------------- protocol

TEST(ProtocolPrefixTest, SplitsBeforeFirstSlash) {
    auto null_co = split_protocol_prefix("null-co://");
    ASSERT_TRUE(null_co.has_value());
    EXPECT_EQ(null_co->protocol, "null-co");
    EXPECT_EQ(null_co->rest, "//");
    auto file = split_protocol_prefix("file:a:b.img");
    ASSERT_TRUE(file.has_value());
    EXPECT_EQ(file->protocol, "file");
    EXPECT_EQ(file->rest, "a:b.img");
    EXPECT_FALSE(split_protocol_prefix("./a:b.img").has_value());
    EXPECT_FALSE(split_protocol_prefix("/tmp/x:y").has_value());
    EXPECT_FALSE(split_protocol_prefix("plain.img").has_value());
    auto empty = split_protocol_prefix(":x");
    ASSERT_TRUE(empty.has_value());
    EXPECT_EQ(empty->protocol, "");
}

}  // namespace
}  // namespace coblock::qapi
