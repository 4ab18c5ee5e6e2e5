#!/usr/bin/env bash
# Kaldi-style option parsing for recipes: every variable set before sourcing this file can be overridden on
# the command line as --name value (dashes in the name map to underscores). --help prints the options block.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"; echo "Options (default values):"
      sed -n '/^# ---- options/,/^\. /p' "$0" | grep -E '^[a-z_]+=' | sed -E 's/^([a-z_]+)=/  --\1 /; s/_/-/g'
      exit 0 ;;
    --*=*) name="${1%%=*}"; value="${1#*=}"; shift ;;
    --*) name="$1"; [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }; value="$2"; shift 2 ;;
    *) echo "$0: unexpected argument '$1' (options look like --name value; see --help)" >&2; exit 1 ;;
  esac
  var="${name#--}"; var="${var//-/_}"
  if ! declare -p "$var" >/dev/null 2>&1; then
    echo "$0: unknown option $name (see --help)" >&2; exit 1
  fi
  printf -v "$var" '%s' "$value"
done
