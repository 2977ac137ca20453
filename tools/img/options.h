// Shared pieces of coblock-img's subcommands: the program name and QEMU's
// error_report/error_exit conventions, qemu-img's number parsers (cvtnum,
// qemu_strtoul) and img_open. Follows QEMU 7.2 qemu-img.c and
// specs/qemu-img-output.md §0.1.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "block/backend.h"
#include "block/types.h"

namespace coblock::img {

// The name errors start with: argv[0]'s basename, so a symlink named
// qemu-img prints "qemu-img: ..." exactly as QEMU does (error_init()).
void set_program_name(const char* argv0);
const std::string& program_name();
const char* version_string();  // "<prog> version X (coblock)\n" + copyright line

// "<prog>: <message>\n" on stderr (QEMU's error_report). A message with
// several lines is printed as is after the prefix.
void error_report(std::string_view message);
// "<prog>: warning: <message>\n" (QEMU's warn_report).
void warn_report(std::string_view message);
// error_report, then "Try '<prog> --help' for more information", exit 1.
[[noreturn]] void error_exit(std::string_view message);
// The two getopt failures qemu-img reports through error_exit (the option
// text is argv[optind - 1] after getopt returned ':' or '?').
[[noreturn]] void missing_argument(const char* option);
[[noreturn]] void unrecognized_option(const char* option);
// The full `--help` text; exits 0.
[[noreturn]] void print_help_and_exit();

// qemu-img's cvtnum_full: a size with k/M/G/T/P/E suffixes within
// [min, max]. On a bad value prints qemu-img's two lines naming `what`
// ("image size", "buffer size", "step_size", "offset") or the range line,
// and returns nullopt. A hex number with a suffix is accepted with QEMU's
// deprecation warning.
std::optional<int64_t> cvtnum(std::string_view what, const char* text, int64_t min = 0,
                              int64_t max = INT64_MAX);

// qemu_strtoul(text, NULL, 0, &res): base 0 (decimal, 0x hex, 0 octal),
// leading whitespace allowed, '-' wraps as strtoul does, no trailing text.
std::optional<unsigned long> parse_ulong(const char* text);

// How img_open opens an image: a filename with an optional -f format, or
// with --image-opts an option string (QemuOpts syntax with implied key
// "file", as qemu-img's "source" option list).
struct ImageSpec {
    std::string filename;
    std::string format;  // empty: probe
    bool image_opts = false;
    OpenFlags flags;
};

// Long-option codes the subcommands share (getopt_long values above every
// short option); a subcommand's own long options start at kOptionFirstOwn.
enum SharedOption : int {
    kOptionObject = 256,
    kOptionImageOpts,
    kOptionOutput,
    kOptionFirstOwn,
};

// What every subcommand's getopt loop does alike, as qemu-img's: ':' and
// '?' (error exit naming the option), -h (help, exit 0), --object
// (accepted and ignored: coblock has no secret objects) and, when `spec` is
// given, -f, -U and --image-opts for that image. Returns whether `c` was
// one of them; getopt only returns the letters a subcommand's optstring
// lists, so a shared letter it does not take never arrives here.
bool handle_shared_option(int c, char** argv, ImageSpec* spec);

// Opens the image as qemu-img's img_open: errors are printed as
// "Could not open '<name>': <reason>" and give nullptr. Probe warnings are
// printed on stderr as QEMU does.
std::unique_ptr<BlockBackend> open_image(const ImageSpec& spec);

}  // namespace coblock::img

namespace coblock::img {

// QEMU's size_to_str: "0 B", "1.32 MiB", "1e+03 KiB" (specs §0.2).
std::string size_to_str(uint64_t value);

// qemu-img's is_valid_option_list for -o: not empty, no leading ',' and no
// odd number of trailing commas.
bool is_valid_option_list(const char* text);

// --output=human|json. Prints qemu-img's error and returns false on
// anything else.
bool parse_output_format(const char* text, bool* json);

// Opens an image for inspection (info, check without -r, map, compare). If
// another process holds the image's write lock, retries with force-share
// and prints a warning that the result may be inconsistent, instead of
// failing as qemu-img does (coblock extension).
std::unique_ptr<BlockBackend> open_image_for_reading(ImageSpec spec);

// QEMU's qemu-progress (util/qemu-progress.c): "    (xx.xx/100%)\r" on
// stdout, printed when the value moves by more than `min_skip` or is
// exactly 0 or 100; end() prints the final newline.
class Progress {
  public:
    Progress(bool enabled, float min_skip) : enabled_(enabled), min_skip_(min_skip) {}
    // As qemu_progress_print(delta, max): max 0 sets the value to delta,
    // otherwise adds delta / 100 * max.
    void print(float delta, int max);
    void end();

  private:
    bool enabled_;
    float min_skip_;
    float current_ = 0;
    float last_print_ = 0;
};

// What qemu-img info shows outside the format-specific block, which the
// node hooks do not carry: cluster size (0 = unknown), encryption and the
// dirty flag. Read from the image header with the pure parsers in
// formats/ for the formats that have one; zeros for the others.
struct ImageFacts {
    int64_t cluster_size = 0;
    bool encrypted = false;
    bool dirty = false;
};
ImageFacts image_facts(BlockNode* node);

// The path of a backing file as seen from the image that names it
// (bdrv_get_full_backing_filename_from_filename).
std::string full_backing_filename(const std::string& image, const std::string& backing);

}  // namespace coblock::img
