#!/usr/bin/env bash
# Runs the libFuzzer targets: Fuzz/run.sh SECONDS TARGET...   (make fuzz / make fuzz-ci)
# Each target runs for SECONDS on a work copy of its committed seeds (Fuzz/corpus/<target>,
# never modified here) in build/fuzz/work/<target>, under nice -n 10, FUZZ_JOBS (default 2)
# at a time, with -timeout=10 (a hang is a failure), -rss_limit_mb=2048 and leak detection.
# A crash, hang, leak or out-of-memory leaves its input in build/fuzz/artifacts/ and fails the
# run. Prints per target: runs, runs/s, final cov/ft, new corpus entries; then
# "N passed, N failed" (one per target).
# FUZZ_KEEP_GOING=1: libFuzzer's fork mode with -ignore_crashes/-ignore_timeouts/-ignore_ooms,
# so one run collects every crashing input (all in build/fuzz/artifacts/) instead of stopping
# at the first; the run still fails when any was found.
set -uo pipefail
seconds="$1"
shift
here="$(cd "$(dirname "$0")" && pwd)"
build="$(dirname "$here")/build/fuzz"
jobs="${FUZZ_JOBS:-2}"
mkdir -p "$build/work" "$build/artifacts" "$build/logs"

max_len() {
  case "$1" in
    answers) echo 16384 ;;    # a status answer: headers and an envelope
    webhook) echo 65536 ;;    # a webhook body (the library takes up to 4 MiB)
    journal) echo 65536 ;;    # a journal with a few dozen entries
    *) echo 4096 ;;
  esac
}

run_one() {
  local t="$1" work="$build/work/$1" log="$build/logs/$1.log"
  rm -rf "$work"
  mkdir -p "$work"
  cp "$here/corpus/$t/"* "$work/"
  local seeds
  seeds=$(ls "$work" | wc -l)
  # SWIFT_BACKTRACE: the runtime's own crash reporter would read other threads' stacks under
  # ASan; libFuzzer reports the crash itself.
  local extra=()
  if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
    extra=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" nice -n 10 "$build/$t" "$work" "${extra[@]}" \
    -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -max_total_time="$seconds" \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" >"$log" 2>&1
  local rc=$?
  local runs rate cov ft
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  local found=""
  if [ -z "$runs" ]; then  # fork mode: the last status line "#RUNS: cov: .. exec/s: R .."
    runs=$(grep -oE '^#[0-9]+:' "$log" | tail -1 | tr -d '#:')
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    found=$(grep -oE 'oom/timeout/crash: [0-9/]+' "$log" | tail -1 | cut -d' ' -f2)
    if [ -n "$found" ] && [ "$found" != "0/0/0" ]; then rc=1; fi
  fi
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  local status=ok
  if [ "$rc" -ne 0 ]; then
    status="FAILED (exit $rc): $(grep -m1 -E 'ERROR: |Fatal error|deadly signal|timeout after|out-of-memory' "$log")"
    [ -n "$found" ] && status="FAILED: oom/timeout/crash $found, inputs in $build/artifacts/"
  fi
  printf '%-8s %ss: %s runs, %s runs/s, cov %s ft %s, corpus %s -> %s  %s\n' "$t" "$seconds" \
    "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$seeds" "$(ls "$work" | wc -l)" "$status" \
    >"$build/logs/$t.summary"
  [ "$rc" -eq 0 ]
}

pids=()
names=()
failed=0
passed=0
for t in "$@"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_one "$t" &
  pids+=($!)
  names+=("$t")
done
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  cat "$build/logs/${names[$i]}.summary"
  if [ -s "$build/logs/${names[$i]}.summary" ] && grep -q FAILED "$build/logs/${names[$i]}.summary"; then
    echo "  log: $build/logs/${names[$i]}.log"
    grep -E -A30 'ERROR: |Fatal error|deadly signal' "$build/logs/${names[$i]}.log" | head -40
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
