# made_by WRAPPER ARGS...: the command as the user typed it, for RESULTS.md's "Made by" line: relative to the
# repo root when run there, else prefixed with the directory it was run from. Sourced by the recipe wrappers.
made_by() {
  local repo quoted= cmd
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cmd=$1; shift
  [ $# -eq 0 ] || quoted=$(printf ' %q' "$@")   # printf with no arguments would print '' once
  cmd="$cmd$quoted"
  case "$PWD/" in
    "$repo/") echo "$cmd" ;;
    "$repo"/*) echo "cd ${PWD#"$repo"/} && $cmd" ;;
    *) echo "cd $PWD && $cmd" ;;
  esac
}
