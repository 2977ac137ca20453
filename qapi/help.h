// The `-o help` listings of qemu-img 7.2, built from option schemas.
// Pure (returns text; the tool prints it). Follows QEMU 7.2
// util/qemu-option.c (qemu_opts_print_help, qemu_opts_append) and qemu-img.c
// (print_block_option_help, print_amend_option_help);
// specs/qemu-img-output.md §2.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qapi/schema.h"

namespace coblock::qapi {

// How qemu-img names a field type: "str" (strings and enums: QEMU's create
// options declare enums as strings), "bool (on/off)", "num" (signed and
// unsigned numbers), "size".
const char* option_type_name(FieldType type);

// One listing line without its newline: two spaces, "name=<type>", then, if
// the field has help text, spaces up to column 24 (none if already longer)
// and " - help". qemu-img 7.2 prints no default values in this listing.
std::string option_help_line(const OptionField& field);

// The option lines of `schemas` merged as qemu_opts_append does (a name
// already listed by an earlier schema is skipped), sorted by the byte
// order of the whole line (so "a.b=" sorts before "a="), each ending in
// "\n". If there are no fields at all: "There are no options for <name>.\n"
// with the name of the first schema.
std::string format_option_lines(const std::vector<const OptionSchema*>& schemas);

// `qemu-img create -f <format> -o help [filename]`. `format_schemas` are
// the format's creation options; `protocol_schema` is the protocol's when a
// filename was given (nullptr otherwise). Without a filename:
//   "Supported <format> options:\n" + lines +
//   "\nThe protocol level may support further options.\n"
//   "Specify the target filename to include those options.\n"
// with one: "Supported options:\n" + lines (format and protocol merged).
std::string format_create_help(std::string_view format, const OptionSchema& format_schema,
                               const OptionSchema* protocol_schema);

// `qemu-img amend -f <format> -o help`: "Amend options for '<format>':\n" +
// lines.
std::string format_amend_help(std::string_view format, const OptionSchema& amend_schema);

}  // namespace coblock::qapi
