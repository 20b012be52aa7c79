// Where the library finds the files it ships with: today the default model.
//
// The default model is looked for, in order:
//   1. $OODSEG_ASSETS/models/<PATHS_DEFAULT_MODEL>                (the full test assets)
//   2. <dir>/../share/oodseg/models/<PATHS_DEFAULT_MODEL>         (an install: make install PREFIX=P)
//   3. <dir>/../assets/models/<PATHS_DEFAULT_MODEL>               (the build tree: build/oodseg, build/liboodseg.so)
//   4. <dir>/../../assets/models/<PATHS_DEFAULT_MODEL>            (build/tests/, build/examples/, build/tools/)
// where <dir> is the folder of the file holding the library's code: the executable when the library
// is linked statically (the CLI), liboodseg.so when it is loaded as a shared library. Never
// relative to the current directory, so an installed program works from anywhere.
#ifndef OODSEG_CORE_PATHS_H
#define OODSEG_CORE_PATHS_H

#include <stddef.h>
#include "err.h"

// Relative to a models/ folder (the assets layout: $OODSEG_ASSETS/models/, assets/models/,
// P/share/oodseg/models/).
#define PATHS_DEFAULT_MODEL "espnetv2/espnetv2_s_2.0_city_1024x512.pth"
#define PATHS_DEFAULT_MODEL_URL "https://github.com/sacmehta/EdgeNets/raw/master/model/segmentation/model_zoo/espnetv2/espnetv2_s_2.0_city_1024x512.pth"
#define PATHS_DEFAULT_MODEL_SHA256 "a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8"

// Writes the first existing candidate above into buf (n bytes) and returns buf. When none exists,
// returns NULL with OODSEG_E_IO naming every path tried, the upstream URL and SHA-256, and saying
// to pass --model.
const char *paths_default_model(char *buf, size_t n, err *e);

// The folder of the file holding the library's code (see above), without a trailing slash, into
// buf; returns buf, or NULL when it cannot be found (then only $OODSEG_ASSETS is searched).
const char *paths_library_dir(char *buf, size_t n);

#endif
