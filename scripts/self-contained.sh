#!/usr/bin/env bash
# A clone alone runs the tests: no tracked file may reach outside the
# repository for test data (a folder beside the clone, or a variable naming
# one). The vendored vectors are under tests/vectors/.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\.\./(\.\./)*shared\b|CHATSEAL_SHARED'
if git grep -nIE "$pattern" -- . ':(exclude)scripts/self-contained.sh'; then
  echo "error: the files above read test data from outside the clone; vendor it under tests/ instead" >&2
  exit 1
fi
echo "self-contained: no tracked file reads outside the clone"
