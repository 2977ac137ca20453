// Tests of QEMU-style JSON output: QDict key order (tdb_hash buckets) and the
// pretty/compact writer, against qemu-img 7.2 captures
// (specs/qemu-img-output.md §0.3, §3.8).
#include "qapi/json_output.h"

#include <gtest/gtest.h>

namespace coblock::qapi {
namespace {

using Json = nlohmann::ordered_json;

TEST(QdictOrderTest, BucketsMatchTheSpecTable) {
    EXPECT_EQ(qdict_bucket("backing-filename-format"), 206u);
    EXPECT_EQ(qdict_bucket("snapshots"), 263u);
    EXPECT_EQ(qdict_bucket("virtual-size"), 309u);
    EXPECT_EQ(qdict_bucket("filename"), 313u);
    EXPECT_EQ(qdict_bucket("cluster-size"), 316u);
    EXPECT_EQ(qdict_bucket("format"), 337u);
    EXPECT_EQ(qdict_bucket("dirty-flag"), 501u);
    EXPECT_EQ(qdict_bucket("image-end-offset"), 30u);
    EXPECT_EQ(qdict_bucket("compat"), 16u);
    EXPECT_EQ(qdict_bucket("extended-l2"), 503u);
    EXPECT_EQ(qdict_bucket("icount"), 18u);
    EXPECT_EQ(qdict_bucket("flags"), 20u);
}

TEST(QdictOrderTest, NewestFirstInsideABucket) {
    // Find two keys that share a bucket and check the later one comes first.
    std::string first = "k0";
    std::string second;
    for (int i = 1; i < 100000 && second.empty(); ++i) {
        std::string candidate = "k" + std::to_string(i);
        if (qdict_bucket(candidate) == qdict_bucket(first)) second = candidate;
    }
    ASSERT_FALSE(second.empty());
    EXPECT_EQ(qdict_key_order({first, second}), (std::vector<std::string>{second, first}));
    EXPECT_EQ(qdict_key_order({"filename", "format", "virtual-size"}),
              (std::vector<std::string>{"virtual-size", "filename", "format"}));
}

// qemu-img info --output=json snap.qcow2 with two snapshots and two
// bitmaps, members built in QAPI schema order.
TEST(QemuJsonTest, PrettyInfoMatchesQemuImgByteForByte) {
    auto snapshot = [](const char* id, const char* name, int64_t date_nsec) {
        Json s = Json::object();
        s["id"] = id;
        s["name"] = name;
        s["vm-state-size"] = 0;
        s["date-sec"] = 1795282146;
        s["date-nsec"] = date_nsec;
        s["vm-clock-sec"] = 0;
        s["vm-clock-nsec"] = 0;
        s["icount"] = 0;
        return s;
    };
    auto bitmap = [](const char* name, Json flags) {
        Json b = Json::object();
        b["name"] = name;
        b["granularity"] = 65536;
        b["flags"] = std::move(flags);
        return b;
    };
    Json data = Json::object();
    data["compat"] = "1.1";
    data["extended-l2"] = false;
    data["lazy-refcounts"] = false;
    data["corrupt"] = false;
    data["refcount-bits"] = 16;
    data["bitmaps"] =
        Json::array({bitmap("bm0", Json::array({"auto"})), bitmap("bm1", Json::array())});
    data["compression-type"] = "zlib";
    Json info = Json::object();
    info["filename"] = "snap.qcow2";
    info["format"] = "qcow2";
    info["dirty-flag"] = false;
    info["actual-size"] = 1486848;
    info["virtual-size"] = 16777216;
    info["cluster-size"] = 65536;
    info["snapshots"] =
        Json::array({snapshot("1", "first", 101361000), snapshot("2", "second", 148701000)});
    info["format-specific"] = Json{{"type", "qcow2"}, {"data", data}};

    EXPECT_EQ(to_qemu_json_pretty(qdict_ordered(info)) + "\n",
              R"({
    "snapshots": [
        {
            "icount": 0,
            "vm-clock-nsec": 0,
            "name": "first",
            "date-sec": 1795282146,
            "date-nsec": 101361000,
            "vm-clock-sec": 0,
            "id": "1",
            "vm-state-size": 0
        },
        {
            "icount": 0,
            "vm-clock-nsec": 0,
            "name": "second",
            "date-sec": 1795282146,
            "date-nsec": 148701000,
            "vm-clock-sec": 0,
            "id": "2",
            "vm-state-size": 0
        }
    ],
    "virtual-size": 16777216,
    "filename": "snap.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 1486848,
    "format-specific": {
        "type": "qcow2",
        "data": {
            "compat": "1.1",
            "compression-type": "zlib",
            "lazy-refcounts": false,
            "bitmaps": [
                {
                    "flags": [
                        "auto"
                    ],
                    "name": "bm0",
                    "granularity": 65536
                },
                {
                    "flags": [
                    ],
                    "name": "bm1",
                    "granularity": 65536
                }
            ],
            "refcount-bits": 16,
            "corrupt": false,
            "extended-l2": false
        }
    },
    "dirty-flag": false
}
)");
}

TEST(QemuJsonTest, ScalarsAndEmptyContainers) {
    EXPECT_EQ(to_qemu_json_pretty(Json::object()), "{\n}");
    EXPECT_EQ(to_qemu_json_pretty(Json::array()), "[\n]");
    EXPECT_EQ(to_qemu_json_pretty(Json(nullptr)), "null");
    EXPECT_EQ(to_qemu_json_pretty(Json(-5)), "-5");
    EXPECT_EQ(to_qemu_json_pretty(Json(18446744073709551615ull)), "18446744073709551615");
    EXPECT_EQ(to_qemu_json_pretty(Json(0.1)), "0.10000000000000001");
    EXPECT_EQ(to_qemu_json_pretty(Json(1.5)), "1.5");
    EXPECT_EQ(to_qemu_json_pretty(Json{{"a", Json::object()}}), "{\n    \"a\": {\n    }\n}");
}

TEST(QemuJsonTest, CompactFormUsesSpacedSeparators) {
    Json options = Json::object();
    options["driver"] = "qcow2";
    options["file"] = Json{{"driver", "file"}, {"filename", "base.qcow2"}};
    options["list"] = Json::array({1, 2});
    options["e"] = Json::object();
    options["l"] = Json::array();
    EXPECT_EQ(to_qemu_json(options, false),
              R"({"driver": "qcow2", "file": {"driver": "file", "filename": "base.qcow2"}, )"
              R"("list": [1, 2], "e": {}, "l": []})");
}

TEST(QemuJsonTest, StringEscapesFollowQuotedStr) {
    auto quoted = [](std::string text) { return to_qemu_json(Json(std::move(text)), false); };
    EXPECT_EQ(quoted("a\"b\\c"), R"("a\"b\\c")");
    EXPECT_EQ(quoted("\b\f\n\r\t"), R"("\b\f\n\r\t")");
    EXPECT_EQ(quoted("\x01\x1f/"), R"("\u0001\u001F/")");
    EXPECT_EQ(quoted("\x7f"), R"("\u007F")");
    EXPECT_EQ(quoted("caf\xc3\xa9"), R"("caf\u00E9")");
    EXPECT_EQ(quoted("\xe2\x82\xac"), R"("\u20AC")");
    EXPECT_EQ(quoted("\xf0\x9f\x98\x80"), R"("\uD83D\uDE00")");
    // Modified UTF-8's NUL, and a real NUL byte.
    EXPECT_EQ(quoted("\xc0\x80"), R"("\u0000")");
    EXPECT_EQ(quoted(std::string("a\0b", 3)), R"("a\u0000b")");
    // Invalid sequences become U+FFFD; a missing continuation byte does not
    // swallow the next character.
    EXPECT_EQ(quoted("\xff"), R"("\uFFFD")");
    EXPECT_EQ(quoted("\x80"), R"("\uFFFD")");
    EXPECT_EQ(quoted("\xc3x"), R"("\uFFFDx")");
    EXPECT_EQ(quoted("\xc1\x81"), R"("\uFFFD")");          // overlong 'A'
    EXPECT_EQ(quoted("\xed\xa0\x80"), R"("\uFFFD")");      // surrogate
    EXPECT_EQ(quoted("\xef\xbf\xbe"), R"("\uFFFD")");      // noncharacter U+FFFE
    EXPECT_EQ(quoted("\xf4\x90\x80\x80"), R"("\uFFFD")");  // beyond U+10FFFF
    EXPECT_EQ(quoted("\xe2\x82"), R"("\uFFFD")");          // truncated at the end
}

}  // namespace
}  // namespace coblock::qapi
