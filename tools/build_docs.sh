#!/usr/bin/env bash
# Build lisette's docs site into _docs/ (settings.ini's doc_path), offline, from the notebooks' saved outputs.
# Needs no model server. Steps: nbdev's own processing into _proc/ (show_doc API blocks, doc links), then
# tools/docs/nb2md.py (pages for mkdocs-material), then mkdocs (strict: a broken link or anchor fails the build).
# With --replay, the notebooks are first run again from their recordings (recordings/, `tools/run_nbs.py --replay`,
# no server) and saved, so every output on the site is the recorded one: the same on every build.
#
#     bash tools/build_docs.sh [--replay]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ] && . .venv/bin/activate
export LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONHASHSEED=0 NO_MKDOCS_2_WARNING=1
# Reproducible pages: mkdocs dates the build (sitemap) from SOURCE_DATE_EPOCH; use the last commit's time.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
secs() { local ms=$(( ($2-$1)/1000000 )); printf '%d.%d' $((ms/1000)) $(( (ms%1000)/100 )); }
t0=$(date +%s%N)
if [ "${1:-}" = --replay ]; then python tools/run_nbs.py --replay; fi
doc_path=$(python -c "from nbdev.config import get_config; print(get_config().doc_path)")

python tools/docs/nbproc.py                        # nbs/*.ipynb -> _proc/*.ipynb
t1=$(date +%s%N)
python tools/docs/nb2md.py _proc _proc/mkdocs "$doc_path"
[ -n "$doc_path" ] && rm -rf "$doc_path"
python -m mkdocs build -f _proc/mkdocs/mkdocs.yml 2>&1 | sed '/^INFO/d'   # not -q: it hides strict's warnings
t2=$(date +%s%N)

pages=$(find "$doc_path" -name '*.html' ! -name 404.html ! -path '*/src/*' | wc -l)
src=$(find "$doc_path/src" -name '*.html' | wc -l)
echo "docs: $pages pages (+$src source pages) in $doc_path/, built in $(secs $t0 $t2)s" \
     "(nbdev processing $(secs $t0 $t1)s, pages + mkdocs $(secs $t1 $t2)s)"
