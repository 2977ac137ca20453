// Differential tests against the real qemu-img / qemu-io 7.2 when they are
// installed (skipped, saying so, when not): the same inputs must give the
// same error texts, size syntax must be accepted and rejected alike, and
// our JSON writer must reproduce `qemu-img info --output=json` exactly.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "qapi/json_output.h"
#include "qapi/keyval.h"
#include "qapi/schema.h"

namespace coblock::qapi {
namespace {

struct Output {
    std::string out;
    std::string err;
    int status = -1;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// Single-quotes `arg` for /bin/sh.
std::string shell_quote(const std::string& arg) {
    std::string quoted = "'";
    for (char c : arg) {
        if (c == '\'') {
            quoted += "'\\''";
        } else {
            quoted += c;
        }
    }
    return quoted + "'";
}

class QemuInteropTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (std::system("command -v qemu-img >/dev/null 2>&1 && "
                        "command -v qemu-io >/dev/null 2>&1") != 0)
            GTEST_SKIP() << "qemu-img/qemu-io not installed: skipping interop checks";
        char dir_template[] = "/tmp/coblock-qapi-XXXXXX";
        ASSERT_NE(mkdtemp(dir_template), nullptr);
        dir_ = dir_template;
        image_ = dir_ + "/x.img";
        ASSERT_EQ(truncate_image(image_, 1 << 20), 0);
    }

    void TearDown() override {
        if (!dir_.empty()) std::system(("rm -rf " + shell_quote(dir_)).c_str());
    }

    static int truncate_image(const std::string& path, long size) {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (f == nullptr) return -1;
        std::fclose(f);
        return ::truncate(path.c_str(), size);
    }

    Output run(const std::vector<std::string>& argv) {
        std::string command = "cd " + shell_quote(dir_) + " &&";
        for (const auto& arg : argv)
            command += " " + shell_quote(arg);
        command += " >" + shell_quote(dir_ + "/out") + " 2>" + shell_quote(dir_ + "/err");
        Output output;
        int raw = std::system(command.c_str());
        output.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
        output.out = read_file(dir_ + "/out");
        output.err = read_file(dir_ + "/err");
        return output;
    }

    std::string dir_;
    std::string image_;
};

TEST_F(QemuInteropTest, CreateOptionErrors) {
    const std::string target = dir_ + "/c.qcow2";
    struct Case {
        std::string option;
        std::string message;
    };
    const Case cases[] = {
        {"cluster_size=abc", parse_size_option("cluster_size", "abc").error().message},
        {"cluster_size=16E", parse_size_option("cluster_size", "16E").error().message},
        {"lazy_refcounts=maybe", parse_bool_option("lazy_refcounts", "maybe").error().message},
        {"refcount_bits=abc", parse_uint_option("refcount_bits", "abc").error().message},
        {"refcount_bits=99999999999999999999",
         parse_uint_option("refcount_bits", "99999999999999999999").error().message},
    };
    for (const auto& c : cases) {
        Output output = run({"qemu-img", "create", "-f", "qcow2", "-o", c.option, target, "1M"});
        EXPECT_EQ(output.status, 1) << c.option;
        EXPECT_EQ(output.err, "qemu-img: " + target + ": " + c.message + "\n") << c.option;
    }
    // Unknown key, validated against the format's and protocol's tables.
    OptionSchema qcow2{"qcow2", {}};
    Status unknown = check_known_keys(*parse_qemu_opts("bogus=1"), {&qcow2});
    Output output = run({"qemu-img", "create", "-f", "qcow2", "-o", "bogus=1", target, "1M"});
    EXPECT_EQ(output.err, "qemu-img: " + target + ": " + unknown.error().message + "\n");
}

TEST_F(QemuInteropTest, UnconsumedOptionErrors) {
    Output format = run({"qemu-io", "-c", "quit", "--image-opts",
                         "driver=raw,file.driver=file,file.filename=" + image_ + ",bogus=1"});
    EXPECT_EQ(format.err,
              "qemu-io: can't open: " +
                  unsupported_option_error(DriverClass::kFormat, "raw", "bogus").message + "\n");
    Output protocol =
        run({"qemu-io", "-c", "quit", "--image-opts",
             "driver=raw,file.driver=file,file.filename=" + image_ + ",file.bogus=1"});
    EXPECT_EQ(protocol.err,
              "qemu-io: can't open: " +
                  unsupported_option_error(DriverClass::kProtocol, "file", "bogus").message + "\n");
}

TEST_F(QemuInteropTest, KeyvalErrorsOfObjectOption) {
    for (const char* text : {"secret,id=s0,data", "secret,id=s0,da$ta=x", ",secret", "secret,,id=1",
                             "secret,a..b=1", "secret,0=1", "secret,a.=1",
                             "secret,id=s0,data=x,a.b=1,a=2", "secret,id=s0,data=x,a=2,a.b=1"}) {
        Result<OptionsTree> ours = parse_keyval(text, "qom-type");
        ASSERT_FALSE(ours.ok()) << text;
        Output output = run({"qemu-img", "info", "--object", text, image_});
        EXPECT_EQ(output.err, "qemu-img: " + ours.error().message + "\n") << text;
    }
}

TEST_F(QemuInteropTest, JsonFilenameErrors) {
    for (const char* name : {"json:", "json:[1]", R"(json:{"driver":"raw"} trailing)",
                             R"(json:{"driver":"raw","driver":"raw"})"}) {
        Result<OptionsTree> ours = parse_filename_or_options(name);
        ASSERT_FALSE(ours.ok()) << name;
        Output output = run({"qemu-io", "-c", "quit", name});
        EXPECT_EQ(output.err, "qemu-io: can't open device " + std::string(name) + ": " +
                                  ours.error().message + "\n")
            << name;
    }
}

// raw's `offset` is a QemuOpts size: QEMU must accept and reject the same
// texts as our strtosz (values past the end of the file fail later, with
// another message, which still counts as "parsed").
TEST_F(QemuInteropTest, SizeSyntaxAgreesWithQemu) {
    for (const char* text : {"0",
                             "512",
                             "1k",
                             "0x200",
                             "1.k",
                             "1.0",
                             "0.5k",
                             " 5k",
                             "+5k",
                             "1.5",
                             "-1",
                             "abc",
                             "1kB",
                             "1e3",
                             ".5k",
                             "1.5e1k",
                             "0x1.8k",
                             "16E",
                             "1 k",
                             "99999999999999999999",
                             "99999999999999999999k",
                             "1.5b",
                             "0x1k"}) {
        Output output =
            run({"qemu-io", "-c", "quit", "--image-opts",
                 "driver=raw,file.driver=file,file.filename=" + image_ + ",offset=" + text});
        bool qemu_invalid = output.err.find("expects a non-negative number") != std::string::npos;
        bool qemu_range = output.err.find("is out of range for parameter") != std::string::npos;
        Result<uint64_t> ours = strtosz(text);
        if (qemu_range) {
            ASSERT_FALSE(ours.ok()) << text;
            EXPECT_EQ(ours.error().kind, ErrorKind::kOutOfRange) << text;
            EXPECT_EQ(output.err, "qemu-io: can't open: " +
                                      parse_size_option("offset", text).error().message + "\n");
        } else if (qemu_invalid) {
            ASSERT_FALSE(ours.ok()) << text;
            EXPECT_EQ(ours.error().kind, ErrorKind::kInvalidArgument) << text;
            EXPECT_EQ(output.err, "qemu-io: can't open: " +
                                      parse_size_option("offset", text).error().message + "\n");
        } else {
            EXPECT_TRUE(ours.ok()) << text << ": qemu said " << output.err;
        }
    }
}

TEST_F(QemuInteropTest, InfoJsonIsReproducedByteForByte) {
    const std::string qcow2 = dir_ + "/i.qcow2";
    ASSERT_EQ(run({"qemu-img", "create", "-q", "-f", "qcow2", qcow2, "64M"}).status, 0);
    ASSERT_EQ(run({"qemu-img", "snapshot", "-c", "first", qcow2}).status, 0);
    ASSERT_EQ(run({"qemu-img", "bitmap", "--add", qcow2, "bm0"}).status, 0);
    for (const std::string& image : {qcow2, image_}) {
        Output output = run({"qemu-img", "info", "--output=json", image});
        ASSERT_EQ(output.status, 0) << output.err;
        // Parse into a sorted (std::map) json to forget QEMU's order, then
        // restore it with qdict_ordered and print.
        nlohmann::json sorted = nlohmann::json::parse(output.out);
        nlohmann::ordered_json reordered =
            qdict_ordered(nlohmann::ordered_json::parse(sorted.dump()));
        EXPECT_EQ(to_qemu_json_pretty(reordered) + "\n", output.out);
    }
}

}  // namespace
}  // namespace coblock::qapi
