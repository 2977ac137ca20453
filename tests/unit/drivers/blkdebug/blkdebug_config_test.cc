// blkdebug's config-file reader and inline option sections: QEMU 7.2's
// syntax quirks and exact error texts (blkdebug.md §2.2, §3, §4).
#include <gtest/gtest.h>

#include "drivers/blkdebug/blkdebug_config.h"

namespace coblock::blkdebug {
namespace {

std::string config_error(const std::string& text) {
    RuleSections sections;
    Status s = parse_config_text(text, sections);
    if (s.ok()) {
        Result<RuleSpecs> specs = make_rules(sections);
        if (specs.ok()) return "ok";
        return specs.error().message;
    }
    return s.error().message;
}

RuleSpecs config_rules(const std::string& text) {
    RuleSections sections;
    Status s = parse_config_text(text, sections);
    EXPECT_TRUE(s.ok()) << s.error().message;
    Result<RuleSpecs> specs = make_rules(sections);
    EXPECT_TRUE(specs.ok()) << specs.error().message;
    return specs.ok() ? *specs : RuleSpecs{};
}

TEST(BlkdebugConfig, DocsExample) {
    RuleSpecs specs = config_rules("[inject-error]\nevent = \"read_aio\"\nerrno = \"28\"\n");
    ASSERT_EQ(specs.inject_error.size(), 1u);
    EXPECT_EQ(specs.inject_error[0].event, BlkdebugEvent::kReadAio);
    EXPECT_EQ(specs.inject_error[0].error, 28);
    EXPECT_EQ(specs.inject_error[0].offset, -1);
    EXPECT_EQ(specs.inject_error[0].iotype_mask, kDefaultIoTypeMask);
    EXPECT_FALSE(specs.inject_error[0].once);
}

TEST(BlkdebugConfig, DefaultsAndValues) {
    RuleSpecs specs = config_rules(
        "# comment\n\n[inject-error]\nevent = \"write_aio\"\nevent = \"none\"\nerrno = \"010\"\n"
        "sector = \"0x10\"\nonce =\"on\"\nimmediately = \"yes\"\niotype = \"flush\"\n"
        "state = \"4294967298\"\n[set-state]\nevent = \"l2_load\"\nnew_state = \"-1\"\n");
    ASSERT_EQ(specs.inject_error.size(), 1u);
    const InjectErrorSpec& r = specs.inject_error[0];
    EXPECT_EQ(r.event, BlkdebugEvent::kNone);  // last value wins
    EXPECT_EQ(r.error, 8);                     // octal
    EXPECT_EQ(r.offset, 16 * 512);
    EXPECT_TRUE(r.once);
    EXPECT_TRUE(r.immediately);
    EXPECT_EQ(r.iotype_mask, io_type_bit(IoType::kFlush));
    EXPECT_EQ(r.state, 2);  // truncated to int
    ASSERT_EQ(specs.set_state.size(), 1u);
    EXPECT_EQ(specs.set_state[0].event, BlkdebugEvent::kL2Load);
    EXPECT_EQ(specs.set_state[0].new_state, -1);
    EXPECT_EQ(specs.set_state[0].state, 0);
}

TEST(BlkdebugConfig, EmptyFilesAreValid) {
    EXPECT_EQ(config_error(""), "ok");
    EXPECT_EQ(config_error("# only a comment\n\n"), "ok");
}

TEST(BlkdebugConfig, SyntaxErrors) {
    EXPECT_EQ(config_error("   \n"), "parse error");
    EXPECT_EQ(config_error("event = \"none\"\n"), "no group defined");
    EXPECT_EQ(config_error("; x\n"), "no group defined");
    EXPECT_EQ(config_error("\t[inject-error]\n"), "no group defined");
    EXPECT_EQ(config_error("[inject-error\nevent = \"none\"\n"),
              "There is no option group 'inject-error\n'");
    EXPECT_EQ(config_error("[INJECT-ERROR]\n"), "There is no option group 'INJECT-ERROR'");
    EXPECT_EQ(config_error("[inject-error]\nEVENT = \"none\"\n"), "Invalid parameter 'EVENT'");
    EXPECT_EQ(config_error("[inject-error]\nerrno=\"28\"\n"), "Invalid parameter 'errno=\"28\"'");
    EXPECT_EQ(config_error("[inject-error]\nevent = none\n"), "invalid parameter value: ");
    EXPECT_EQ(config_error("[set-state]\nevent = \"none\"\nerrno = \"5\"\n"),
              "Invalid parameter 'errno'");
}

TEST(BlkdebugConfig, ValueErrors) {
    EXPECT_EQ(config_error("[inject-error]\nevent = \"foo\"\n"), "invalid parameter value: foo");
    EXPECT_EQ(config_error("[inject-error]\nerrno = \"5\"\n"), "Missing event name for rule");
    EXPECT_EQ(config_error("[inject-error]\nevent = \"none\"\nerrno = \"x\"\n"),
              "Parameter 'errno' expects a number");
    EXPECT_EQ(config_error("[inject-error]\nevent = \"none\"\nerrno = \"99999999999999999999\"\n"),
              "Value '99999999999999999999' is too large for parameter 'errno'");
    EXPECT_EQ(config_error("[inject-error]\nevent = \"none\"\nsector = \"1k\"\n"),
              "Parameter 'sector' expects a number");
    EXPECT_EQ(config_error("[inject-error]\nevent = \"none\"\nonce = \"1\"\n"),
              "Parameter 'once' expects 'on' or 'off'");
    EXPECT_EQ(config_error("[inject-error]\nevent = \"none\"\niotype = \"READ\"\n"),
              "invalid parameter value: READ");
    EXPECT_EQ(config_error("[inject-error]\nevent = \"l1_grow.alloc_table\"\n"),
              "invalid parameter value: l1_grow.alloc_table");
}

TEST(BlkdebugConfig, Ids) {
    EXPECT_EQ(config_error("[inject-error \"a\"]\nevent = \"none\"\n"), "ok");
    EXPECT_EQ(config_error("[inject-error \"1x\"]\nevent = \"none\"\n"),
              "Parameter 'id' expects an identifier\n"
              "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
    EXPECT_EQ(config_error("[inject-error \"a\"]\nevent = \"none\"\n[inject-error \"a\"]\n"
                           "event = \"none\"\n"),
              "Duplicate ID 'a' for inject-error");
}

TEST(BlkdebugConfig, SemanticErrorsComeAfterSyntax) {
    // A bad event in the first section is reported only after the whole
    // file parsed: the syntax error of the second section wins.
    EXPECT_EQ(config_error("[inject-error]\nevent = \"foo\"\n[bogus]\n"),
              "There is no option group 'bogus'");
}

std::string option_error(std::initializer_list<std::pair<std::string, std::string>> entries) {
    qapi::OptionsTree options(entries);
    RuleSections sections;
    Status s = take_option_sections(options, sections);
    if (!s.ok()) return s.error().message;
    Result<RuleSpecs> specs = make_rules(sections);
    return specs.ok() ? "ok" : specs.error().message;
}

TEST(BlkdebugOptions, Sections) {
    qapi::OptionsTree options({{"inject-error.0.event", "write_aio"},
                               {"inject-error.0.once", "on"},
                               {"inject-error.1.event", "read_aio"},
                               {"set-state.event", "none"},
                               {"set-state.new_state", "2"},
                               {"config", "x"}});
    RuleSections sections;
    ASSERT_TRUE(take_option_sections(options, sections).ok());
    EXPECT_EQ(options.size(), 1u);  // only "config" is left
    Result<RuleSpecs> specs = make_rules(sections);
    ASSERT_TRUE(specs.ok());
    ASSERT_EQ(specs->inject_error.size(), 2u);
    EXPECT_EQ(specs->inject_error[0].event, BlkdebugEvent::kWriteAio);
    EXPECT_TRUE(specs->inject_error[0].once);
    EXPECT_EQ(specs->inject_error[1].event, BlkdebugEvent::kReadAio);
    ASSERT_EQ(specs->set_state.size(), 1u);
    EXPECT_EQ(specs->set_state[0].new_state, 2);
}

TEST(BlkdebugOptions, Errors) {
    EXPECT_EQ(option_error({{"inject-error.0.foo", "1"}}),
              "[inject-error] section doesn't support the option 'foo'");
    EXPECT_EQ(option_error({{"inject-error.0.event", "write_aio"}, {"inject-error.foo", "1"}}),
              "Unused option 'foo' for [inject-error]");
    EXPECT_EQ(option_error({{"inject-error.1.event", "write_aio"}}),
              "Unused option '1.event' for [inject-error]");
    EXPECT_EQ(option_error({{"inject-error.0", "write_aio"}}),
              "[inject-error] section (index 0) does not consist of keys");
    EXPECT_EQ(option_error({{"inject-error.event", "write_aio"}, {"inject-error.0.event", "x"}}),
              "Unknown option '0.event' for [inject-error]");
    EXPECT_EQ(option_error({{"set-state.0.event", "none"}, {"set-state.0.errno", "5"}}),
              "[set-state] section doesn't support the option 'errno'");
    EXPECT_EQ(option_error({{"inject-error.event", "bogus"}}), "invalid parameter value: bogus");
}

TEST(BlkdebugConfig, IoTypes) {
    EXPECT_EQ(parse_io_type("read"), IoType::kRead);
    EXPECT_EQ(parse_io_type("block-status"), IoType::kBlockStatus);
    EXPECT_EQ(parse_io_type("write_zeroes"), std::nullopt);
}

}  // namespace
}  // namespace coblock::blkdebug
