#!/usr/bin/env bash
# The npm package as a user gets it: `npm pack` (after 20-node.sh built the
# addon), installed into a scratch project, then `require`, `import` and
# `tsc --strict` with no other flags. Then `npm install` from a path laid out
# as a clone: the install script builds from the Rust sources beside it
# (cargo stubbed to hand back the addon already built, so no second
# compile). Then the one-line failures
# without sources or without cargo, and the loader's message without an addon.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
js="$repo/js"
tsc="$js/node_modules/.bin/tsc"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

addon=$(cd "$js" && ls chatseal.*.node 2>/dev/null | head -1)
[ -n "$addon" ] || fail "no built addon in js/ (20-node.sh builds it)"

# 1. The packed package.
tarball=$(cd "$js" && npm pack --silent --pack-destination "$scratch")
echo "packed $tarball"
tar -tzf "$scratch/$tarball" | grep -x "package/$addon" >/dev/null || fail "$tarball lacks $addon"
mkdir "$scratch/app"
cd "$scratch/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --prefer-offline "$scratch/$tarball" >/dev/null
cp "$repo"/tests/npm/use.{cjs,mjs,ts} .
node use.cjs
node use.mjs
"$tsc" --strict --noEmit use.ts || fail "index.d.ts does not compile under tsc --strict"
echo "tsc --strict: ok"

# 2. install.js in a copy of the package laid out as in a clone.
clone="$scratch/clone"
mkdir -p "$clone/js" "$clone/node-binding"
touch "$clone/node-binding/Cargo.toml"
cp -r "$scratch/app/node_modules/chatseal/." "$clone/js/"
rm "$clone/js/$addon"
cp "$js/$addon" "$scratch/libchatseal_node.so"
cat >"$scratch/cargo" <<STUB
#!/bin/sh
[ "\$1" = --version ] && { echo "cargo 1.0.0 (stub)"; exit 0; }
echo "\$*" >"$scratch/cargo-args"
echo '{"reason":"compiler-artifact","target":{"name":"chatseal_node"},"filenames":["$scratch/libchatseal_node.so"]}'
STUB
chmod +x "$scratch/cargo"
mkdir "$scratch/app2"
(cd "$scratch/app2" && npm init -y >/dev/null &&
  CARGO="$scratch/cargo" npm install --no-audit --no-fund --prefer-offline --loglevel=error "$clone/js")
grep -q -- "build --release --locked --manifest-path $clone/node-binding/Cargo.toml" "$scratch/cargo-args" ||
  fail "installing from a clone did not build node-binding: $(cat "$scratch/cargo-args" 2>/dev/null)"
(cd "$scratch/app2" && node -e "require('chatseal').Keyring.generate()") || fail "the addon install.js placed does not load"
echo "npm install from a clone: the install script builds with cargo and places $addon"

# 3. The failures say what is missing, in one line.
rm "$clone/js/$addon"
out=$(cd "$clone/js" && CARGO=/nonexistent/cargo INIT_CWD="$scratch/app" node scripts/install.js 2>&1) && fail "install.js passed without cargo"
grep -q "needs Rust (cargo)" <<<"$out" || fail "without cargo: $out"
rm -r "$clone/node-binding"
out=$(cd "$clone/js" && INIT_CWD="$scratch/app" node scripts/install.js 2>&1) && fail "install.js passed with nothing to build from"
grep -q "no built addon .* and no Rust sources beside it" <<<"$out" || fail "without sources: $out"
out=$(cd "$scratch/app" && node -e "require('$clone/js')" 2>&1) && fail "require passed without an addon"
grep -q "the native addon is not built" <<<"$out" || fail "require without an addon: $out"
echo "install.js and the loader name what is missing"
