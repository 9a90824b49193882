#!/usr/bin/env bash
# The Rust tests' PKCS#11 token is SoftHSM2 (Debian's softhsm2): installed
# here when missing. Each test initialises its own token in a temp dir
# through SOFTHSM2_CONF, so nothing else is set up and no machine token is
# touched.
set -euo pipefail
module_found() {
  for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib64/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && return 0
  done
  return 1
}
if command -v softhsm2-util >/dev/null && module_found; then
  echo "softhsm: SoftHSM2 $(softhsm2-util --version) is installed"
  exit 0
fi
echo "installing Debian's softhsm2 for the PKCS#11 tests"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null
else
  echo "error: the PKCS#11 tests need SoftHSM2 (apt-get install softhsm2)" >&2
  exit 1
fi
module_found || { echo "error: softhsm2 is installed but libsofthsm2.so is not where the tests look" >&2; exit 1; }
echo "softhsm: installed SoftHSM2 $(softhsm2-util --version)"
