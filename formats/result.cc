// Anchor translation unit for the formats library: the header-only error type
// and byte helpers compile here once so every consumer sees one definition.
#include "formats/bytes.h"
#include "formats/result.h"
