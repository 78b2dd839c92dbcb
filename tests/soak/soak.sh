#!/usr/bin/env bash
# The daemon's soak test (docs/testing.md, "Soak"): chaosd with schedules firing every minute
# and clients submitting every few seconds (tests/soak/soak-experiment.yaml: a 4 MiB fill and a
# pause of a sleep the run starts, held 2 s), while CLIENTS API clients (curl over the UNIX
# socket) list runs, read a run's status, metrics, health, faults and schedules without pause.
# Samples the daemon's RSS, open fds, threads, the journal's size and its rows every
# SAMPLE seconds into soak.csv, and fails unless:
#   - every run ended ok (chaosd_runs_total has no other outcome) and every request succeeded;
#   - idle after the load, the daemon has the fds and threads it had idle before it, and its
#     RSS is at most 4 MiB above the first half's maximum under load (the allocator keeps the
#     arenas the run threads warmed up: the 1-hour run went from 19.6 MB idle to a plateau of
#     28-29.7 MB within 2 minutes and stayed there; a leak grows past the plateau);
#   - over the second half of the load, RSS, the journal's size and the run folders grow by no
#     more than a bound (retention: --keep-runs KEEP_RUNS keeps the journal flat);
#   - nothing is left: no filler file, no stopped or left-over `sleep` of a run, no fault held
#     in the journal, no chaosd nft table.
#   tests/soak/soak.sh [--duration SECONDS] [--clients N] [--submitters N] [--schedules N]
#                      [--keep-runs N] [--sample SECONDS] [--build-dir DIR] [--out DIR]
#     --duration    seconds of load (default 120; the documented long run is 3600)
#     --clients     API clients reading (default 20)
#     --submitters  of those, clients that also submit a run and wait for it (default 4)
#     --schedules   schedules with cron "* * * * *", each on a folder of its own (default 4)
#     --keep-runs   the daemon's --keep-runs (default 40, so the short run prunes too)
#     --build-dir   holds chaosd/chaosd and chaosd/chaosctl (default: build/, or build-dev/)
#     --out         where soak.csv, the daemon's log and the summary go (default: a temp dir)
# Root (the daemon pauses processes and fills disks). The load is kept modest: each reading
# client sleeps 200-700 ms between requests, each submitter runs one experiment at a time.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

DURATION=120
CLIENTS=20
SUBMITTERS=4
SCHEDULES=4
KEEP_RUNS=40
SAMPLE=10
BUILD=""
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="${2:?}"; shift 2 ;;
    --clients) CLIENTS="${2:?}"; shift 2 ;;
    --submitters) SUBMITTERS="${2:?}"; shift 2 ;;
    --schedules) SCHEDULES="${2:?}"; shift 2 ;;
    --keep-runs) KEEP_RUNS="${2:?}"; shift 2 ;;
    --sample) SAMPLE="${2:?}"; shift 2 ;;
    --build-dir) BUILD="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    -h | --help) sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "soak: unknown argument '$1' (see --help)" ;;
  esac
done
is_root || die "soak: run as root (the daemon pauses processes and fills a disk)"
if [[ -z "${BUILD}" ]]; then
  BUILD="${BUILD_DIR}"
  [[ -x "${BUILD}/chaosd/chaosd" ]] || BUILD="${CHAOSD_ROOT}/build-dev"
fi
CHAOSD="${BUILD}/chaosd/chaosd"
CHAOSCTL="${BUILD}/chaosd/chaosctl"
[[ -x "${CHAOSD}" && -x "${CHAOSCTL}" ]] || die "soak: no chaosd/chaosctl in ${BUILD}"
for tool in curl sqlite3 jq; do
  command -v "${tool}" >/dev/null || die "soak: ${tool} not found (scripts/bootstrap)"
done
EXPERIMENT="${CHAOSD_ROOT}/tests/soak/soak-experiment.yaml"

WORK="$(mktemp -d /tmp/chaosd-soak.XXXXXX)"
[[ -n "${OUT}" ]] || OUT="${WORK}/out"
mkdir -p "${OUT}" "${WORK}/state" "${WORK}/data" "${WORK}/clients"
SOCK="${WORK}/chaosd.sock"
STATE="${WORK}/state"
CSV="${OUT}/soak.csv"
DAEMON_PID=""
CLIENT_PIDS=()

cleanup() {
  local p
  for p in "${CLIENT_PIDS[@]}"; do kill "${p}" 2>/dev/null || true; done
  if [[ -n "${DAEMON_PID}" ]] && kill -0 "${DAEMON_PID}" 2>/dev/null; then
    kill -TERM "${DAEMON_PID}" 2>/dev/null || true
    wait "${DAEMON_PID}" 2>/dev/null || true
  fi
  "${CHAOSCTL}" recover --state-dir "${STATE}" >/dev/null 2>&1 || true
  rm -rf "${WORK}/data" "${WORK}/state" "${WORK}/clients"
}
trap cleanup EXIT

api() { # api METHOD PATH [curl args...]: the body on stdout, fails on a status >= 400
  local method="$1" path="$2"
  shift 2
  curl -sS --fail --max-time 30 --unix-socket "${SOCK}" -X "${method}" "$@" "http://chaosd${path}"
}

now_s() { date +%s; }

# ---- the daemon --------------------------------------------------------------------------
"${CHAOSD}" --socket "${SOCK}" --state-dir "${STATE}" --policy "${WORK}/no-policy.yaml" \
  --keep-runs "${KEEP_RUNS}" --log-file "${OUT}/chaosd.log" &
DAEMON_PID=$!
for _ in $(seq 100); do
  api GET /v1/health >/dev/null 2>&1 && break
  sleep 0.1
done
api GET /v1/health >/dev/null || die "soak: the daemon did not come up (${OUT}/chaosd.log)"

# pid rss_kib fds threads journal_bytes journal_runs journal_faults journal_audit run_dirs
sample() {
  local rss threads fds jbytes jruns jfaults jaudit dirs
  rss="$(awk '/^VmRSS:/ {print $2}' "/proc/${DAEMON_PID}/status")"
  threads="$(awk '/^Threads:/ {print $2}' "/proc/${DAEMON_PID}/status")"
  fds="$(find "/proc/${DAEMON_PID}/fd" -mindepth 1 -maxdepth 1 | wc -l)"
  jbytes="$(stat -c %s "${STATE}"/journal.db* 2>/dev/null | awk '{s += $1} END {print s + 0}')"
  read -r jruns jfaults jaudit < <(sqlite3 -cmd ".timeout 5000" -separator ' ' \
    "file:${STATE}/journal.db?mode=ro" \
    "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM faults), (SELECT COUNT(*) FROM audit)" \
    2>/dev/null || echo "-1 -1 -1")
  dirs="$(find "${STATE}/runs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)"
  echo "$(now_s),$1,${rss},${fds},${threads},${jbytes},${jruns},${jfaults},${jaudit},${dirs}"
}
echo "time,phase,rss_kib,fds,threads,journal_bytes,journal_runs,journal_faults,journal_audit,run_dirs" >"${CSV}"
sleep 2
IDLE_BEFORE="$(sample idle-before)"
echo "${IDLE_BEFORE}" >>"${CSV}"

# ---- schedules ---------------------------------------------------------------------------
YAML_JSON="$(jq -Rs . <"${EXPERIMENT}")"
for k in $(seq 1 "${SCHEDULES}"); do
  mkdir -p "${WORK}/data/s${k}"
  api POST /v1/schedules -H 'Content-Type: application/json' \
    -d "{\"experiment\": ${YAML_JSON}, \"vars\": {\"dir\": \"${WORK}/data/s${k}\"}, \"cron\": \"* * * * *\"}" \
    >/dev/null || die "soak: schedule ${k} was refused"
done

# ---- clients -----------------------------------------------------------------------------
END_AT=$(($(now_s) + DURATION))
reader() { # reader N: reads until END_AT; one line per request: status
  local n="$1" i=0 path id
  local paths=(/v1/runs?limit=20 RUN /metrics /v1/health /v1/faults /v1/schedules /v1/version)
  while [[ $(now_s) -lt ${END_AT} ]]; do
    path="${paths[$(((i + n) % ${#paths[@]}))]}"
    if [[ "${path}" == RUN ]]; then
      id="$(api GET '/v1/runs?limit=1' 2>/dev/null | jq -r '.runs[0].id // empty' || true)"
      path="/v1/runs/${id:-none}"
      [[ -n "${id}" ]] || path=/v1/health
    fi
    if api GET "${path}" >/dev/null 2>>"${WORK}/clients/errors-${n}"; then
      echo ok
    else
      echo "fail ${path}" | tee -a "${WORK}/clients/errors-${n}"
    fi
    i=$((i + 1))
    sleep "0.$((2 + RANDOM % 6))"
  done
}
submitter() { # submitter N: one run at a time on a folder of its own, until END_AT
  local n="$1" id state
  mkdir -p "${WORK}/data/c${n}"
  while [[ $(now_s) -lt ${END_AT} ]]; do
    if ! id="$(api POST "/v1/runs?var=dir=${WORK}/data/c${n}" --data-binary "@${EXPERIMENT}" \
      -H 'Content-Type: application/yaml' 2>>"${WORK}/clients/errors-${n}" | jq -r .id)"; then
      echo "fail submit" | tee -a "${WORK}/clients/errors-${n}"
      sleep 1
      continue
    fi
    echo submitted
    for _ in $(seq 120); do
      sleep 1
      state="$(api GET "/v1/runs/${id}" 2>/dev/null | jq -r .state || true)"
      [[ "${state}" == running ]] || break
    done
    sleep "$((RANDOM % 3))"
  done
}
for n in $(seq 1 "${CLIENTS}"); do
  if [[ ${n} -le ${SUBMITTERS} ]]; then
    (submitter "${n}" >"${WORK}/clients/log-${n}") &
  else
    (reader "${n}" >"${WORK}/clients/log-${n}") &
  fi
  CLIENT_PIDS+=($!)
done
log "soak: ${DURATION} s, ${CLIENTS} clients (${SUBMITTERS} submitting), ${SCHEDULES} schedules, keep-runs ${KEEP_RUNS}, out ${OUT}"
while [[ $(now_s) -lt ${END_AT} ]]; do
  sleep "${SAMPLE}"
  sample load >>"${CSV}"
  kill -0 "${DAEMON_PID}" 2>/dev/null || die "soak: the daemon died (${OUT}/chaosd.log)"
done
for p in "${CLIENT_PIDS[@]}"; do wait "${p}" || true; done
CLIENT_PIDS=()
# The schedules go, and the runs in progress end (a run is about 5 s).
for id in $(api GET /v1/schedules | jq -r '.schedules[].id'); do api DELETE "/v1/schedules/${id}" >/dev/null; done
for _ in $(seq 120); do
  [[ "$(api GET /v1/health | jq .runsActive)" == 0 ]] && break
  sleep 1
done
sleep 3
IDLE_AFTER="$(sample idle-after)"
echo "${IDLE_AFTER}" >>"${CSV}"
METRICS="$(api GET /metrics)"

# ---- verdict -----------------------------------------------------------------------------
failures=()
requests="$(cat "${WORK}"/clients/log-* | grep -c -v '^fail' || true)"
failed_requests="$(cat "${WORK}"/clients/log-* | grep -c '^fail' || true)"
[[ "${failed_requests}" -eq 0 ]] || failures+=("${failed_requests} requests failed: $(cat "${WORK}"/clients/errors-* | sort | uniq -c | sort -rn | head -n 5 | tr '\n' ' ')")
outcome_count() { awk -v o="$1" '$1 ~ "^chaosd_runs_total\\{outcome=\""o"\"\\}" {print $2}' <<<"${METRICS}"; }
runs_ok="$(outcome_count ok)"
runs_ok="${runs_ok:-0}"
runs_other="$(grep '^chaosd_runs_total{' <<<"${METRICS}" | grep -v 'outcome="ok"' | awk '{s += $2} END {print s + 0}')"
[[ "${runs_other}" -eq 0 ]] || failures+=("runs not ok: $(grep '^chaosd_runs_total{' <<<"${METRICS}" | tr '\n' ' ')")
[[ "${runs_ok}" -gt 0 ]] || failures+=("no run completed")
schedule_fired="$(grep '^chaosd_schedule_runs_total{' <<<"${METRICS}" | tr '\n' ' ')"

IFS=, read -r _ _ rss0 fds0 thr0 jb0 _ _ _ _ <<<"${IDLE_BEFORE}"
IFS=, read -r _ _ rss1 fds1 thr1 jb1 jruns1 jfaults1 jaudit1 dirs1 <<<"${IDLE_AFTER}"
[[ "${fds1}" -le "${fds0}" ]] || failures+=("open fds idle: ${fds0} before, ${fds1} after")
[[ "${thr1}" -le "${thr0}" ]] || failures+=("threads idle: ${thr0} before, ${thr1} after")
# Second half of the load against the first: RSS within 4 MiB, the journal within 25% + 256 KiB
# (the WAL file wanders between checkpoints), run folders and journal runs within keep-runs +
# the runs in flight.
half="$(awk -F, '$2 == "load"' "${CSV}" | awk -F, '{a[NR] = $0} END {
  h = int(NR / 2); r1 = 0; r2 = 0; j1 = 0; j2 = 0
  for (i = 1; i <= NR; i++) { split(a[i], f, ",")
    if (i <= h) { if (f[3] > r1) r1 = f[3]; if (f[6] > j1) j1 = f[6] }
    else { if (f[3] > r2) r2 = f[3]; if (f[6] > j2) j2 = f[6] } }
  print r1, r2, j1, j2 }')"
read -r rss_h1 rss_h2 jb_h1 jb_h2 <<<"${half}"
[[ ${rss1} -le $((rss_h1 + 4096)) ]] ||
  failures+=("RSS idle after the load: ${rss1} KiB, above the first half's plateau ${rss_h1} KiB + 4 MiB")
if [[ "${DURATION}" -ge $((SAMPLE * 6)) ]]; then
  [[ $((rss_h2 - rss_h1)) -le 4096 ]] || failures+=("RSS grew under load: max ${rss_h1} KiB in the first half, ${rss_h2} KiB in the second")
  [[ ${jb_h2} -le $((jb_h1 + jb_h1 / 4 + 262144)) ]] || failures+=("journal grew: max ${jb_h1} bytes in the first half, ${jb_h2} in the second")
fi
bound=$((KEEP_RUNS + SUBMITTERS + SCHEDULES))
[[ "${jruns1}" -le "${bound}" ]] || failures+=("journal keeps ${jruns1} runs (keep-runs ${KEEP_RUNS})")
[[ "${dirs1}" -le "${bound}" ]] || failures+=("${dirs1} run folders (keep-runs ${KEEP_RUNS})")

# Nothing left behind.
fillers="$(find "${WORK}/data" -name '.chaosd-fill-*' | head -n 5)"
[[ -z "${fillers}" ]] || failures+=("filler files left: ${fillers}")
sleepers="$(pgrep -f '^/usr/bin/sleep 600$' || true)"
[[ -z "${sleepers}" ]] || failures+=("exec targets left running: ${sleepers//$'\n'/ }")
held="$(api GET /v1/faults | jq '.faults | length')"
[[ "${held}" -eq 0 ]] || failures+=("${held} faults still held in the journal")
if command -v nft >/dev/null && nft list tables 2>/dev/null | grep -q chaosd; then
  failures+=("chaosd nft tables left: $(nft list tables | grep chaosd | tr '\n' ' ')")
fi

{
  echo "soak: ${DURATION} s of load, ${CLIENTS} clients (${SUBMITTERS} submitting), ${SCHEDULES} schedules"
  echo "  runs ok: ${runs_ok}, other outcomes: ${runs_other}; schedules: ${schedule_fired:-none}"
  echo "  requests: ${requests} ok, ${failed_requests} failed"
  echo "  idle before: RSS ${rss0} KiB, ${fds0} fds, ${thr0} threads, journal ${jb0} bytes"
  echo "  idle after:  RSS ${rss1} KiB, ${fds1} fds, ${thr1} threads, journal ${jb1} bytes" \
    "(${jruns1} runs, ${jfaults1} faults, ${jaudit1} audit lines), ${dirs1} run folders"
  echo "  under load: RSS max ${rss_h1} KiB first half, ${rss_h2} KiB second half;" \
    "journal max ${jb_h1} / ${jb_h2} bytes"
  echo "  samples: ${CSV}"
} | tee "${OUT}/summary.txt"
if [[ ${#failures[@]} -gt 0 ]]; then
  printf '  FAIL: %s\n' "${failures[@]}" | tee -a "${OUT}/summary.txt"
  exit 1
fi
echo "soak: PASS" | tee -a "${OUT}/summary.txt"
