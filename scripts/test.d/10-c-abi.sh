#!/usr/bin/env bash
# C and C++ tests of libchatseal: static and dynamic, valgrind, ASan/UBSan,
# the example microservice, and an install used through pkg-config.
set -euo pipefail
cd "$(dirname "$0")/../../c-abi"
for tool in valgrind pkg-config; do
  command -v "$tool" >/dev/null && continue
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's $tool for the C tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  else
    echo "error: the C tests need $tool (apt-get install $tool)" >&2
    exit 1
  fi
done
make test
