// Tests of OptionsTree: order, replacement, subtree extraction, merge and
// the nested JSON view (qdict_extract_subqdict / qdict_join / qdict_crumple).
#include "qapi/options_tree.h"

#include <gtest/gtest.h>

namespace coblock::qapi {
namespace {

TEST(OptionsTreeTest, KeepsInsertionOrderAndReplacesInPlace) {
    OptionsTree tree;
    tree.set("driver", "raw");
    tree.set("file.filename", "a.img");
    tree.set("read-only", "on");
    tree.set("driver", "qcow2");
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"driver", "file.filename", "read-only"}));
    EXPECT_EQ(tree.get("driver"), "qcow2");
    EXPECT_EQ(tree.size(), 3u);
}

TEST(OptionsTreeTest, GetHasEraseTake) {
    OptionsTree tree{{"a", "1"}, {"b", "2"}};
    EXPECT_TRUE(tree.has("a"));
    EXPECT_FALSE(tree.has("c"));
    EXPECT_EQ(tree.get("c"), std::nullopt);
    EXPECT_TRUE(tree.erase("a"));
    EXPECT_FALSE(tree.erase("a"));
    EXPECT_EQ(tree.take("b"), "2");
    EXPECT_TRUE(tree.empty());
}

TEST(OptionsTreeTest, ExtractSubtreeMovesPrefixedKeysOnly) {
    OptionsTree tree{{"driver", "qcow2"},
                     {"file.driver", "file"},
                     {"file", "node0"},
                     {"filename", "x"},
                     {"file.filename", "a.qcow2"},
                     {"files.x", "y"},
                     {"backing.file.filename", "b.qcow2"}};
    EXPECT_TRUE(tree.has_subtree("file"));
    EXPECT_FALSE(tree.has_subtree("fil"));
    OptionsTree file = tree.extract_subtree("file");
    EXPECT_EQ(file.keys(), (std::vector<std::string>{"driver", "filename"}));
    EXPECT_EQ(file.get("filename"), "a.qcow2");
    EXPECT_EQ(tree.keys(), (std::vector<std::string>{"driver", "file", "filename", "files.x",
                                                     "backing.file.filename"}));
    OptionsTree backing = tree.extract_subtree("backing");
    OptionsTree backing_file = backing.extract_subtree("file");
    EXPECT_EQ(backing_file.get("filename"), "b.qcow2");
    EXPECT_TRUE(backing.empty());
}

TEST(OptionsTreeTest, MergeWithoutOverwriteKeepsExistingValues) {
    OptionsTree explicit_options{{"driver", "raw"}};
    OptionsTree from_json{{"driver", "qcow2"}, {"file.filename", "a"}};
    OptionsTree merged = explicit_options;
    merged.merge(from_json, false);
    EXPECT_EQ(merged.get("driver"), "raw");
    EXPECT_EQ(merged.get("file.filename"), "a");
    merged.merge(from_json, true);
    EXPECT_EQ(merged.get("driver"), "qcow2");
}

TEST(OptionsTreeTest, ToJsonNestsDottedKeysAndKeepsKinds) {
    OptionsTree tree;
    tree.set("driver", "qcow2");
    tree.set("file.driver", "file");
    tree.set("file.filename", "a.qcow2");
    tree.set("size", "1024");
    tree.set("cache.direct", "on", ValueKind::kBool);
    tree.set("latency", "-5", ValueKind::kNumber);
    tree.set("big", "18446744073709551615", ValueKind::kNumber);
    tree.set("ratio", "0.5", ValueKind::kNumber);
    tree.set("backing", "", ValueKind::kNull);
    tree.set("empty", "", ValueKind::kEmptyObject);
    tree.set("none", "", ValueKind::kEmptyArray);
    EXPECT_EQ(tree.to_json().dump(),
              R"({"driver":"qcow2","file":{"driver":"file","filename":"a.qcow2"},"size":"1024",)"
              R"("cache":{"direct":true},"latency":-5,"big":18446744073709551615,"ratio":0.5,)"
              R"("backing":null,"empty":{},"none":[]})");
}

TEST(OptionsTreeTest, ToJsonTurnsIndexKeysIntoArrays) {
    OptionsTree tree{{"server.1.host", "b"}, {"server.0.host", "a"}, {"x.0", "p"}, {"x.2", "q"}};
    EXPECT_EQ(tree.to_json().dump(),
              R"({"server":[{"host":"a"},{"host":"b"}],"x":{"0":"p","2":"q"}})");
    // The root stays an object even when its keys are indexes.
    OptionsTree numeric{{"0", "a"}};
    EXPECT_EQ(numeric.to_json().dump(), R"({"0":"a"})");
}

TEST(OptionsTreeTest, ToJsonKeepsConflictingDottedKeyFlat) {
    OptionsTree tree{{"file", "node0"}, {"file.filename", "a"}, {"file.x.y", "b"}};
    EXPECT_EQ(tree.to_json().dump(), R"({"file":"node0","file.filename":"a","file.x.y":"b"})");
}

TEST(OptionsTreeTest, OptionStringDoublesCommas) {
    OptionsTree tree{{"driver", "file"}, {"filename", "a,b.img"}};
    EXPECT_EQ(tree.to_option_string(), "driver=file,filename=a,,b.img");
}

}  // namespace
}  // namespace coblock::qapi
