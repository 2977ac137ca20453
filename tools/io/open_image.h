// Opening the image, shared by the command line and the `open` command, as
// qemu-io 7.2's openfile(): one image at a time, -U as force-share=on, the
// block layer's warnings (the raw-probe one) on stderr, and its errors as
// "can't open device NAME: reason" or, without a name, "can't open: reason".
#pragma once

#include <optional>
#include <string>

#include "block/types.h"
#include "qapi/options_tree.h"

namespace coblock::io {

// qemu-io's defaults: read-write, discard=unmap, and the device cache in
// writethrough mode (every write flushed) unless -t/-n say otherwise.
OpenFlags default_open_flags();

// Returns 0, or 1 after printing the error. `snapshot` (-s) puts a
// temporary qcow2 overlay over the image, as QEMU's BDRV_O_SNAPSHOT.
int open_image(const char* name, const OpenFlags& flags, bool force_share,
               std::optional<qapi::OptionsTree> options, bool snapshot = false);

// Parses a QemuOpts string (--image-opts, open -o), printing QEMU's
// deprecation warnings as "NAME: warning: ...".
std::optional<qapi::OptionsTree> parse_image_options(const char* text, const char* implied_key);

}  // namespace coblock::io
