#!/usr/bin/env bash
# Build lisette's docs site into _docs/ (settings.ini's doc_path), offline. Needs no model server: the notebooks are
# first run again from their recordings (recordings/, `tools/run_nbs.py --replay`, strictly) into the scratch folder
# _replayed/, so every output on the site comes from the recorded traffic of the real server, the same on every
# build, and nbs/ is left as it is. Then nbdev's own processing into _proc/ (show_doc API blocks, doc links),
# tools/docs/nb2md.py (pages for mkdocs-material), and mkdocs (strict: a broken link or anchor fails the build).
#
#     bash tools/build_docs.sh                   # replay, then build
#     bash tools/build_docs.sh --replayed DIR    # build from notebooks already replayed into DIR (tools/suite.sh)
#     bash tools/build_docs.sh --saved           # build from the outputs saved in nbs/ (no replay)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ] && . .venv/bin/activate
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONHASHSEED=0 NO_MKDOCS_2_WARNING=1
# Reproducible pages: mkdocs dates the build (sitemap) from SOURCE_DATE_EPOCH; use the last commit's time.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
secs() { local ms=$(( ($2-$1)/1000000 )); printf '%d.%d' $((ms/1000)) $(( (ms%1000)/100 )); }
t0=$(date +%s%N)
case "${1:-}" in
  --saved) src=nbs ;;
  --replayed) src=$2; [ -d "$src" ] || { echo "build_docs: no folder $src" >&2; exit 2; } ;;
  "") src=_replayed; rm -rf "$src"; python tools/run_nbs.py --replay --workers 2 --out "$src" ;;
  *) echo "usage: bash tools/build_docs.sh [--saved | --replayed DIR]" >&2; exit 2 ;;
esac
doc_path=$(python -c "from nbdev.config import get_config; print(get_config().doc_path)")

python tools/docs/nbproc.py "$src"                 # the notebooks -> _proc/*.ipynb
t1=$(date +%s%N)
python tools/docs/nb2md.py _proc _proc/mkdocs "$doc_path"
[ -n "$doc_path" ] && rm -rf "$doc_path"
python -m mkdocs build -f _proc/mkdocs/mkdocs.yml 2>&1 | sed '/^INFO/d'   # not -q: it hides strict's warnings
t2=$(date +%s%N)

pages=$(find "$doc_path" -name '*.html' ! -name 404.html ! -path '*/src/*' | wc -l)
nsrc=$(find "$doc_path/src" -name '*.html' | wc -l)
echo "docs: $pages pages (+$nsrc source pages) in $doc_path/ from $src/, built in $(secs $t0 $t2)s" \
     "(replay and nbdev processing $(secs $t0 $t1)s, pages + mkdocs $(secs $t1 $t2)s)"
