// Parsers from text to an OptionsTree: QEMU's two key=value syntaxes
// (QemuOpts and keyval), json:{...} filenames, and the filename/protocol split.
// Pure: no I/O, no global state. Follows QEMU 7.2 util/qemu-option.c
// (opts_do_parse, get_opt_value, has_help_option), util/keyval.c
// (keyval_parse_one), block.c (parse_json_filename, path_has_protocol) and
// qobject/block-qdict.c (qdict_flatten); error texts checked against the
// qemu-img/qemu-io 7.2 binaries.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/result.h"
#include "qapi/options_tree.h"

namespace coblock::qapi {

// QemuOpts syntax, used by `qemu-img -o`, `qemu-io --image-opts` and
// `open -o`:
//   - elements are separated by ','; in a value ",," stands for one ',';
//     keys cannot contain ',' or '=' and are not checked here (a bad or
//     unknown key is reported by whoever consumes the tree);
//   - a bare first element is the value of `implied_key` when one is given
//     ("secret,id=x" with implied key "qom-type");
//   - any other bare element is a flag: "foo" means foo=on and "nofoo" means
//     foo=off (QEMU 7.2 deprecates this; see `warnings`); "help" and "?"
//     become help=on / ?=on without a warning: callers that offer help
//     check has_help_option() first, as qemu-img does;
//   - a repeated key keeps its first position and takes the last value.
// Never fails on its own (QemuOpts accepts any text); returns a Result so
// callers treat it like the other parsers. If `warnings` is non-null, each
// deprecated flag appends QEMU's two-line warning text, e.g.
//   "short-form boolean option 'read-only' deprecated\nPlease use read-only=on instead"
// (qemu-io prints "qemu-io: warning: " before it; qemu-img -o is silent, so
// pass nullptr there).
Result<OptionsTree> parse_qemu_opts(std::string_view text, std::string_view implied_key = {},
                                    std::vector<std::string>* warnings = nullptr);

// keyval syntax (util/keyval.c), used by `--object` and `--blockdev`:
//   - every element must be key=value, except a bare first element when
//     `implied_key` is given (that value has no ",," escaping, as in QEMU);
//   - keys are dotted QAPI names: each fragment starts with a letter and
//     holds letters, digits, '-' and '_'; fragments after the first may be
//     list indexes (digits); at most 127 characters per fragment;
//   - a repeated key takes the last value; using "a" both as a value and as
//     a prefix ("a=1,a.b=2") is an error.
// Errors (kInvalidArgument), with QEMU's texts:
//   "Invalid parameter 'x'", "Expected '=' after parameter 'x'",
//   "Parameter 'x' is too long", "Parameter fragment 'x' is too long",
//   "Parameters 'a.*' used inconsistently".
// When `help_requested` is non-null, a bare "help" or "?" sets it to true
// and is otherwise skipped; when null such an element is an ordinary bare
// word ("Expected '=' after parameter 'help'").
Result<OptionsTree> parse_keyval(std::string_view text, std::string_view implied_key = {},
                                 bool* help_requested = nullptr);

// QEMU's is_help_option: "help" or "?".
bool is_help_option(std::string_view value);
// QEMU's has_help_option: true if any ','-separated element (with ",,"
// escapes) of a QemuOpts string is "help" or "?".
bool has_help_option(std::string_view text);

// Parses the text after "json:" as a JSON object and flattens it the way
// qdict_flatten does: nested objects become dotted keys ("file.filename"),
// non-empty arrays become "key.0", "key.1"...; empty objects and arrays stay
// as one entry of kind kEmptyObject/kEmptyArray. Scalars keep their JSON
// type in OptionValue::kind; their text is the string itself, integers in
// decimal, other numbers as printf("%.17g"), booleans "on"/"off" (what
// qemu_opts_absorb_qdict turns a QBool into), null "".
// If a nested key and a dotted key name the same option, the one later in
// the text wins. Like QEMU's parser, strings may also be single-quoted.
// Errors (kInvalidArgument), with QEMU's texts where QEMU has one:
//   "Could not parse the JSON options: Expecting a JSON value" (empty),
//   "Could not parse the JSON options: Expecting at most one JSON value",
//   "Could not parse the JSON options: JSON parse error, duplicate key",
//   "Could not parse the JSON options: JSON parse error, <what was wrong>",
//   "Invalid JSON object given" (valid JSON that is not an object).
Result<OptionsTree> parse_json_options(std::string_view json_text);

// The options a filename argument stands for: parse_json_options() of the
// rest for "json:..." names, otherwise a tree with the single key
// "filename". Protocol prefixes and format probing are the block layer's
// business (see split_protocol_prefix()).
Result<OptionsTree> parse_filename_or_options(std::string_view filename);

struct ProtocolPrefix {
    std::string protocol;  // text before the first ':' ("null-co", "file", "nbd")
    std::string rest;      // text after that ':' ("//", "a.img")
};
// QEMU's path_has_protocol + bdrv_find_protocol split: a filename has a
// protocol prefix when a ':' comes before any '/' ("./a:b" has none,
// "file:a.img" has "file"). Does not know which protocols exist; the block
// layer matches `protocol` against its drivers. "json:" is not special here.
std::optional<ProtocolPrefix> split_protocol_prefix(std::string_view filename);

}  // namespace coblock::qapi
