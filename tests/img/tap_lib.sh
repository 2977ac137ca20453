# shellcheck shell=bash
# TAP helpers shared by the coblock-img tests (sourced after the script has
# declared its KNOWN table: test name -> reason it is a TAP TODO).

count=0
failed=0
pass() { count=$((count + 1)); echo "ok $count - $1"; }
fail() {
    count=$((count + 1))
    local name=$1
    shift
    if [[ -n "${KNOWN[$name]:-}" ]]; then
        echo "not ok $count - $name # TODO ${KNOWN[$name]}"
    else
        echo "not ok $count - $name"
        failed=$((failed + 1))
    fi
    printf '#   %s\n' "$@"
}
skip() { count=$((count + 1)); echo "ok $count - $1 # SKIP $2"; }

# run DIR TOOL ARGS... -> $DIR/out, $DIR/err, $DIR/rc
run() {
    local dir=$1
    shift
    (cd "$dir" && "$@" >out 2>err </dev/null; echo $? >rc)
}
