#!/usr/bin/env bash
# No two paths in the repository (files and the directories above them) may differ only in case:
# on a case-insensitive filesystem (macOS, Windows by default) they would be one path, and a
# checkout there would lose files or fail to build (Sources/Apixo and Sources/apixo once did).
set -euo pipefail
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
clashes=$(git ls-files -z --cached --others --exclude-standard \
  | tr '\0' '\n' \
  | awk -F/ '{ p = ""; for (i = 1; i <= NF; i++) { p = (i == 1 ? $i : p "/" $i); print p } }' \
  | sort -u \
  | awk '{ k = tolower($0); if (k in seen && seen[k] != $0) print seen[k] "  <->  " $0; else seen[k] = $0 }')
if [ -n "$clashes" ]; then
  echo "case_check: paths that differ only in case:" >&2
  echo "$clashes" >&2
  exit 1
fi
echo "case_check: ok ($(git ls-files | wc -l) files, no two paths differ only in case)"
