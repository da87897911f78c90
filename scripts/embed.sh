#!/usr/bin/env bash
# embed.sh NAME IN OUT: writes OUT, a C file defining `const char NAME[]` (IN's bytes, then a
# NUL) and `const unsigned long NAME_len`. Uses only coreutils (od), no xxd.
set -euo pipefail
name=$1 in=$2 out=$3
{
    echo "/* Generated from $in by scripts/embed.sh: do not edit. */"
    echo "const char $name[] = {"
    od -An -v -tx1 "$in" | awk '{ for (i = 1; i <= NF; i++) printf "0x%s,", $i; print "" }'
    echo "0x00};"
    echo "const unsigned long ${name}_len = sizeof $name - 1;"
} > "$out.tmp"
mv "$out.tmp" "$out"
