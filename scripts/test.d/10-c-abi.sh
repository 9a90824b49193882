#!/usr/bin/env bash
# C and C++ tests of libchatseal: static and dynamic, valgrind, ASan/UBSan,
# and the example microservice.
set -euo pipefail
cd "$(dirname "$0")/../../c-abi"
command -v valgrind >/dev/null || { echo "error: valgrind is required (apt-get install valgrind)" >&2; exit 1; }
make test
