#!/usr/bin/env bash
# record.sh N WINDOW OUTDIR [CHAOSCTL]: N harmless and N delay runs of the two-replica
# experiments here, interleaved (so slow drift of the machine hits both alike), on an idle
# machine; then extract.py turns each folder into a recording (see ../README.md).
#   tests/data/verdict/recipe/record.sh 20 7s /tmp/verdict-7s
#   python3 tests/data/verdict/recipe/extract.py /tmp/verdict-7s/delay "..." > delay-7s-idle.json
set -euo pipefail
n="$1" window="$2" out="$3" chaosctl="${4:-build/chaosd/chaosctl}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "${out}/harmless" "${out}/delay" /tmp/chaosd-verdict-www /tmp/chaosd-verdict-fill
echo ok >/tmp/chaosd-verdict-www/index.html
for i in $(seq 1 "${n}"); do
  for kind in harmless delay; do
    rc=0
    "${chaosctl}" run "${here}/pair-${kind}.yaml" --var window="${window}" \
      --report-dir "${out}/${kind}" >/dev/null 2>&1 || rc=$?
    echo "${kind} ${i}: exit ${rc}"
  done
done
