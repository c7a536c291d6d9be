#!/usr/bin/env bash
# First the notebooks from their recordings (recordings/, lisette.replay), strictly and with no server reachable,
# into _replayed/; the docs site is built from those (a broken page fails the suite). Then every notebook live
# (nbdev_test, one at a time: they share one 2-core model server), and the wall times of both runs; then pytest
# (tests/test_docs.py checks the site in Chromium). Streams are read by lisette's own reader (lisette.fastpath) by
# default; the notebooks and the streaming tests then run again with LISETTE_STREAM=litellm, so both readers pass
# the same suite.
# Expects LISETTE_TEST_API_BASE (set by `lisette-llama run`). Prints per-notebook times and the counts.
set -uo pipefail
cd "$(dirname "$0")/.."
# Replay: in a network namespace of their own (only a loopback, no server on it) when this machine allows one;
# strict replay refuses any request the recording lacks either way.
rm -rf _replayed
s=$(date +%s)
if unshare -n true 2>/dev/null; then
  where="in a network namespace with no server"
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh python tools/run_nbs.py --replay --workers 2 --out _replayed; rrc=$?
else
  where="with no network namespace here (strict replay alone keeps requests in)"
  python tools/run_nbs.py --replay --workers 2 --out _replayed; rrc=$?
fi
replay_secs=$(( $(date +%s)-s ))
echo "[replay] notebooks replayed $where: $([ $rrc -eq 0 ] && echo ok || echo FAILED), ${replay_secs}s"
s=$(date +%s)
if bash tools/build_docs.sh --replayed _replayed; then docs=0; r=ok; else docs=1; r=FAILED; fi
echo "[docs] site build from the replayed notebooks: $r, $(( $(date +%s)-s ))s"
pass=0; fail=0; failed=(); cells=0; live_secs=0
for reader in lisette litellm; do
  [ $reader = litellm ] && export LISETTE_STREAM=litellm
  for nb in nbs/[0-9]*.ipynb nbs/index.ipynb; do
    [ -f "$nb" ] || continue
    n=$(python -c "import json,sys; print(sum(c['cell_type']=='code' for c in json.load(open(sys.argv[1]))['cells']))" "$nb")
    s=$(date +%s)
    if nbdev_test --path "$nb" --n_workers 0 --do_print; then pass=$((pass+1)); cells=$((cells+n)); r=ok
    else fail=$((fail+1)); failed+=("$nb ($reader reader)"); r=FAILED; fi
    echo "[notebook] $nb, streams read by $reader: $r, $n code cells, $(( $(date +%s)-s ))s"
    [ $reader = lisette ] && live_secs=$(( live_secs + $(date +%s) - s ))
  done
done
unset LISETTE_STREAM
echo "notebooks: $pass passed, $fail failed ($cells code cells run; every notebook once per stream reader)"
[ $fail -eq 0 ] || echo "failed notebooks: ${failed[*]}"
echo "[replay] the same notebooks live (lisette's reader, one at a time: they share the server): ${live_secs}s;" \
     "replayed (two at a time: no server to share): ${replay_secs}s;" \
     "$(python -c "print(f'{$live_secs/max($replay_secs,1):.1f}')")x faster (goal >= 5x);" \
     "recordings: $(du -sh recordings | cut -f1) in $(ls recordings | wc -l) notebooks"
prc=0; lrc=0
if ls tests/test_*.py >/dev/null 2>&1; then python -m pytest -q tests; prc=$?; fi
# The tests that stream through Chat, again with litellm's reader.
echo "[pytest] streaming tests with LISETTE_STREAM=litellm"
LISETTE_STREAM=litellm python -m pytest -q tests/test_faults.py tests/test_control.py tests/test_toolstream.py \
  tests/test_thinking.py tests/test_structured.py tests/test_cost.py tests/test_secrets.py; lrc=$?
[ $docs -eq 0 ] || echo "the docs site failed to build (see [docs] above)"
[ $rrc -eq 0 ] || echo "the notebooks failed in replay (see [run_nbs] above)"
[ $fail -eq 0 ] && [ $prc -eq 0 ] && [ $lrc -eq 0 ] && [ $docs -eq 0 ] && [ $rrc -eq 0 ]
