#!/usr/bin/bash
# One boot of the power-cut test, inside the VM of `scripts/vm-test --powercut N` (its init
# runs this instead of the test binary). The kernel command line says which boot this is:
#   chaosd.powercut=cut:OWNER     OWNER (daemon or run) starts tests/soak/soak-experiment.yaml
#                                 (a fill of /mnt/state/data and a pause of a sleep the run
#                                 starts, held together); the host cuts the power (SIGKILL of
#                                 qemu) at a random moment after CHAOSD-POWERCUT-ARMED.
#   chaosd.powercut=check:WHO     after the cut: what the journal and the disk hold, then WHO
#                                 (daemon: chaosd's start; run: `chaosctl run` of another
#                                 experiment; recover: `chaosctl recover`) cleans up, then the
#                                 checks; prints CHAOSD-POWERCUT-CHECK: PASS or FAIL <reasons>.
# The disk (/dev/vda, ext4) persists across boots and cycles: the journal and the fill's folder
# live there. Host programs are called by full path (busybox's shell applets come first).
# shellcheck disable=SC2016 # awk programs (run as $B awk): their $ fields are awk's
set -u
B=/bin/busybox
CONF=/etc/chaosd-vm
CHAOSD="$(cat "${CONF}/chaosd")"
CHAOSCTL="$(cat "${CONF}/chaosctl")"
EXPERIMENT="$(cat "${CONF}/experiment")"
SQLITE=/usr/bin/sqlite3
MNT=/mnt/state
STATE="${MNT}/chaosd"
DATA="${MNT}/data"
FILL=24MiB
FILL_KIB=24576

arg="$($B sed -n 's/.*chaosd\.powercut=\([^ ]*\).*/\1/p' /proc/cmdline)"
phase="${arg%%:*}"
who="${arg#*:}"

result() { echo "CHAOSD-POWERCUT-CHECK: $*"; }
uptime_cs() { $B cut -d' ' -f1 /proc/uptime | $B tr -d .; }  # centiseconds since boot

$B mkdir -p "${MNT}"
# The mount replays ext4's journal: what was committed before the cut comes back, the rest not.
if ! $B mount -t ext4 /dev/vda "${MNT}"; then
  result "FAIL the disk did not mount"
  exit 1
fi
$B mkdir -p "${STATE}" "${DATA}" "${MNT}/other"

used_kib() { $B df -k "${MNT}" | $B awk 'NR == 2 {print $3}'; }
fillers() { $B find "${DATA}" "${MNT}/other" -name '.chaosd-fill-*' 2>/dev/null; }
journal_query() { "${SQLITE}" -cmd '.timeout 5000' "${STATE}/journal.db" "$1" 2>&1; }

wait_for_log() { # wait_for_log FILE PATTERN SECONDS
  for _ in $($B seq $(($3 * 10))); do
    $B grep -q "$2" "$1" 2>/dev/null && return 0
    $B sleep 0.1
  done
  return 1
}

if [ "${phase}" = cut ]; then
  # The filesystem's use with no fill, once, durable before the first run.
  if [ ! -f "${MNT}/used-baseline" ]; then
    used_kib >"${MNT}/used-baseline"
    $B sync
  fi
  echo "CHAOSD-POWERCUT-ARMED owner=${who}"
  t0="$(uptime_cs)"
  done_marker() { echo "CHAOSD-POWERCUT-DONE rc=$1 after_ms=$((($(uptime_cs) - t0) * 10))"; }
  case "${who}" in
    daemon)
      "${CHAOSD}" --socket /run/chaosd.sock --state-dir "${STATE}" --policy /nonexistent.yaml \
        --log-file /tmp/chaosd.log &
      wait_for_log /tmp/chaosd.log "serving socket" 30 || echo "powercut: the daemon did not start"
      "${CHAOSCTL}" submit --socket /run/chaosd.sock "${EXPERIMENT}" --var "dir=${DATA}" \
        --var "size=${FILL}" --var hold=4s --wait 2>&1 | $B sed 's/^/owner: /'
      done_marker "${PIPESTATUS[0]}"
      ;;
    run)
      "${CHAOSCTL}" run "${EXPERIMENT}" --state-dir "${STATE}" --var "dir=${DATA}" \
        --var "size=${FILL}" --var hold=4s 2>&1 | $B sed 's/^/owner: /'
      done_marker "${PIPESTATUS[0]}"
      ;;
  esac
  # The host cuts the power whenever it chooses; until then, nothing.
  while :; do $B sleep 60; done
fi

# ---- check: the boot after the cut -------------------------------------------------------
fail=""
note_fail() { fail="${fail}${fail:+; }$*"; }

held=""
open_runs=0
if [ -f "${STATE}/journal.db" ]; then
  integrity="$(journal_query 'PRAGMA integrity_check')"
  [ "${integrity}" = ok ] || note_fail "integrity_check before recovery: ${integrity}"
  if [ "$(journal_query "SELECT COUNT(*) FROM sqlite_master WHERE name = 'faults'")" = 1 ]; then
    # What the journal knew when the power went: the open run's faults and their states.
    held="$(journal_query "SELECT group_concat(fault_type || '=' || state, ',') FROM faults WHERE run_id IN (SELECT run_id FROM runs WHERE ended_at IS NULL)")"
    open_runs="$(journal_query 'SELECT COUNT(*) FROM runs WHERE ended_at IS NULL')"
  else
    held="no-schema-yet"  # created, its first commit lost with the power (synchronous=NORMAL)
  fi
fi
before_fillers="$(fillers | $B wc -l)"
before_used="$(used_kib)"
echo "CHAOSD-POWERCUT-FOUND open_runs=${open_runs} faults=${held:-none} fillers=${before_fillers} used_kib=${before_used}"

case "${who}" in
  daemon)
    "${CHAOSD}" --socket /run/chaosd.sock --state-dir "${STATE}" --policy /nonexistent.yaml \
      --log-file /tmp/chaosd.log &
    pid=$!
    wait_for_log /tmp/chaosd.log "serving socket" 30 || note_fail "the daemon did not start"
    $B kill -TERM "${pid}"
    wait "${pid}" || note_fail "the daemon exited $?"
    $B grep -E 'recovery at start|fault (reverted|gone|revert failed)' /tmp/chaosd.log
    ;;
  run)
    # Another experiment on another folder: its start reverts the earlier run's leftovers.
    "${CHAOSCTL}" run "${EXPERIMENT}" --state-dir "${STATE}" --var "dir=${MNT}/other" \
      --var size=1MiB --var hold=1s >/tmp/run.log 2>&1
    rc=$?
    [ "${rc}" -eq 0 ] || { $B tail -n 20 /tmp/run.log; note_fail "chaosctl run exited ${rc}"; }
    $B grep -E 'recover|fault (reverted|gone)' /tmp/run.log
    ;;
  recover)
    "${CHAOSCTL}" recover --state-dir "${STATE}" || note_fail "chaosctl recover exited $?"
    ;;
esac

left="$(fillers)"
[ -z "${left}" ] || note_fail "filler files left: ${left}"
if [ -f "${STATE}/journal.db" ]; then
  integrity="$(journal_query 'PRAGMA integrity_check')"
  [ "${integrity}" = ok ] || note_fail "integrity_check after recovery: ${integrity}"
  unreverted="$(journal_query "SELECT COUNT(*) FROM faults WHERE state IN ('intent', 'applied', 'revert-failed')")"
  [ "${unreverted}" = 0 ] || note_fail "${unreverted} faults not reverted: $(journal_query "SELECT group_concat(fault_type || '=' || state || ' ' || error, '; ') FROM faults WHERE state IN ('intent', 'applied', 'revert-failed')")"
  still_open="$(journal_query 'SELECT COUNT(*) FROM runs WHERE ended_at IS NULL')"
  [ "${still_open}" = 0 ] || note_fail "${still_open} runs still open"
  echo "CHAOSD-POWERCUT-JOURNAL $(journal_query "SELECT group_concat(fault_type || '=' || state || '/' || reverted_by, ',') FROM faults WHERE seq > (SELECT COALESCE(MAX(seq), 0) - 4 FROM faults)")"
fi
# The fill's space is back: the filesystem uses at most what it used before any run, plus
# the journal's growth and the run folders (well under the fill's size).
after_used="$(used_kib)"
baseline="$(cat "${MNT}/used-baseline" 2>/dev/null || echo 0)"
[ $((after_used - baseline)) -lt $((FILL_KIB / 2)) ] ||
  note_fail "the filesystem uses ${after_used} KiB, ${baseline} KiB before any run: the fill's space is not back"
stopped="$($B ps -o stat,args | $B awk '$1 ~ /^T/' | $B grep -v awk)"
[ -z "${stopped}" ] || note_fail "stopped processes: ${stopped}"
$B sync
$B umount "${MNT}" || note_fail "umount failed"
if [ -z "${fail}" ]; then
  result "PASS used_kib=${after_used} baseline_kib=${baseline}"
else
  result "FAIL ${fail}"
fi
