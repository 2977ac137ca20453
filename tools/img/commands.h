// The subcommands of coblock-img. Each takes argv starting at the command
// name (getopt is reset before the call) and returns the exit status, as
// the img_* handlers of QEMU 7.2 qemu-img.c do.
#pragma once

namespace coblock::img {

// create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]
int img_create(int argc, char** argv);
// bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] [-i aio] [-n] [--no-drain]
//       [-o offset] [--pattern=byte] [-q] [-s size] [-S step] [-t cache] [-w] [-U]
//       [--image-opts] filename
int img_bench(int argc, char** argv);

}  // namespace coblock::img
