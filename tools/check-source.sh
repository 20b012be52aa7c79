#!/usr/bin/env bash
# Rules of the source tree that no compiler enforces, checked on the tracked files:
#   - function multi-versioning goes through NN_TARGET_CLONES (nn/simd.h): a raw target_clones
#     makes an ifunc resolver that crashes a ThreadSanitizer build at load, before main, so
#     `make test-tsan` dies with a bare "Segmentation fault" and no test runs (seen in CI);
#   - no absolute path of a developer's machine in code, comments or docs: files are named
#     relative to the repository or to ../shared.
# Run by `make test` through tools/run-tests.sh.
set -u
cd "$(dirname "$0")/.."
. tools/check-lib.sh

raw_clones() {
  local hits
  hits=$(git grep -n 'target_clones' -- '*.c' '*.h' ':!nn/simd.h')
  if [ -n "$hits" ]; then
    echo "$hits"
    echo "use NN_TARGET_CLONES from nn/simd.h instead (it drops the clones under -fsanitize=thread)"
    return 1
  fi
  echo "every multi-versioned function uses NN_TARGET_CLONES"
}

machine_paths() {
  local hits
  hits=$(git grep -nE '(^|[^.a-zA-Z0-9_])/(work|home|root|check)/' -- ':!tools/check-source.sh')
  if [ -n "$hits" ]; then
    echo "$hits"
    echo "name files relative to the repository or to ../shared"
    return 1
  fi
  echo "no machine paths"
}

step "target_clones only through nn/simd.h" raw_clones
step "no absolute machine paths" machine_paths
finish check-source
