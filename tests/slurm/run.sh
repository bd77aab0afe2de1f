#!/bin/bash
# A real Slurm on one node (localhost): installs Debian's slurm-wlm and munge, starts munged,
# slurmctld and slurmd, submits the job array that `ltmlp sweep --emit slurm` writes for a
# small sweep (default preset, none and ab × 2 learning rates × 2 seeds, 8 epochs), requeues
# one task mid-run (what preemption does: SIGTERM, then the task runs again and must resume
# from its checkpoint), waits for the array and the dependent report job, and checks that the
# report lists every cell finished. Everything it started is stopped on exit.
#
# Usage, as root on Debian: tests/slurm/run.sh [WORKDIR]
#   LTMLP=path/to/ltmlp  use this binary (default: target/release/ltmlp, built if missing)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-/tmp/ltmlp-slurm}
LTMLP=${LTMLP:-$ROOT/target/release/ltmlp}
STATE=$WORK/state
SWEEP=$WORK/sweep
say() { echo "== $(date -u +%H:%M:%S) $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs packages and starts daemons)"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
fi
if [ ! -x "$LTMLP" ]; then
  say "building ltmlp"
  (cd "$ROOT" && cargo build --release)
fi
say "$(sbatch --version), $("$LTMLP" --version)"

rm -rf "$WORK"
mkdir -p "$STATE/ctld" "$STATE/d"

STARTED_MUNGE=0
cleanup() {
  set +e
  scancel --quiet --full "$(cat "$WORK/job" 2>/dev/null)" 2>/dev/null
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  if [ "$STARTED_MUNGE" = 1 ] && [ -s /run/munge/munged.pid ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null
  fi
  # Wait (at most 15 s) until the daemons are gone, so that nothing outlives the script.
  for _ in $(seq 15); do
    # One name per pgrep: a pattern longer than 15 characters matches no process name.
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null \
      || pgrep -x slurmstepd >/dev/null || break
    sleep 1
  done
}
trap cleanup EXIT

# munge: the key the package made (or a new one), and the daemon if it is not running.
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged
  STARTED_MUNGE=1
fi
munge -n | unmunge | grep -q "STATUS: *Success" || fail "munge does not work"

# One node, this machine; no cgroups (containers rarely allow them).
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ { print int($2 / 1024) - 256 }' /proc/meminfo)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ltmlp-test
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

say "starting slurmctld and slurmd (nice 5: the machine is shared)"
nice -n 5 slurmctld
nice -n 5 slurmd -N "$HOST"
for _ in $(seq 60); do
  sinfo -h -N -o "%T" 2>/dev/null | grep -Eq "^idle" && break
  sleep 1
done
sinfo -N -l
sinfo -h -N -o "%T" | grep -Eq "^idle" || fail "the node did not come up; see $STATE/slurmd.log"

say "planning the sweep and writing the job array"
cd "$WORK"
"$LTMLP" sweep "$ROOT/presets/default.toml" --variants none,ab \
  --grid train.learning_rate=0.05,0.1 --seeds 2 --jobs 2 --set train.epochs=8 \
  --out "$SWEEP" --emit slurm
cat "$SWEEP/sweep.sbatch"
CELLS=$(grep -c '"folder":' "$SWEEP/plan.json")
[ "$CELLS" = 8 ] || fail "expected 8 cells, plan.json has $CELLS"

JOB=$(sbatch --parsable "$SWEEP/sweep.sbatch")
echo "$JOB" > "$WORK/job"
say "submitted array job $JOB"

folder_of() { grep -o '"folder": "[^"]*"' "$SWEEP/plan.json" | sed -n "$(($1 + 1))p" | cut -d'"' -f4; }
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }

# Requeue a running task once it has written two epochs and before it ends.
VICTIM=""
for _ in $(seq 600); do
  for task in $(squeue -h -j "$JOB" -t R -o "%K" 2>/dev/null); do
    dir=$SWEEP/$(folder_of "$task")
    if [ "$(lines "$dir/metrics.jsonl")" -ge 2 ] && [ ! -f "$dir/summary.json" ]; then
      VICTIM=$task
      break 2
    fi
  done
  sleep 0.2
done
[ -n "$VICTIM" ] || fail "no task was caught mid-run"
VDIR=$SWEEP/$(folder_of "$VICTIM")
say "requeueing task $VICTIM mid-run ($(lines "$VDIR/metrics.jsonl") epochs written in $VDIR)"
scontrol requeue "${JOB}_${VICTIM}"
# Slurm holds a requeued job back for about two minutes before it may start again; let it
# start at once so that the test takes one minute, not three (the resume is the same).
sleep 1
scontrol update JobId="${JOB}_${VICTIM}" StartTime=now || true

say "waiting for the array and the report job"
for _ in $(seq 900); do
  RJOB=$(cat "$SWEEP"/slurm/report-"$JOB"/job 2>/dev/null || true)
  if [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && [ -n "$RJOB" ] \
     && [ -z "$(squeue -h -j "$RJOB" 2>/dev/null)" ]; then
    break
  fi
  sleep 1
done
squeue
[ -f "$SWEEP/report.json" ] || fail "the report job did not write report.json"

say "checking"
VLOG=$SWEEP/slurm/${JOB}_${VICTIM}.out
echo "--- $VLOG"
cat "$VLOG"
echo "--- report job output"
cat "$SWEEP"/slurm/report-"$RJOB".out | head -40
grep -q "interrupted by SIGTERM" "$VLOG" || fail "task $VICTIM was not stopped by SIGTERM"
grep -q "resuming from its checkpoint" "$VLOG" || fail "task $VICTIM did not resume from its checkpoint"
grep -q '"planned": 8' "$SWEEP/report.json" || fail "report.json: not 8 planned cells"
grep -q '"finished": 8' "$SWEEP/report.json" || fail "report.json: not every cell finished"
grep -q '"not_finished": \[\]' "$SWEEP/report.json" || fail "report.json lists unfinished cells"
for i in $(seq 0 7); do
  d=$SWEEP/$(folder_of "$i")
  grep -q '"state": "finished"' "$d/summary.json" || fail "$d did not finish"
  [ "$(lines "$d/metrics.jsonl")" = 8 ] || fail "$d: $(lines "$d/metrics.jsonl") metric lines, not 8"
done
say "PASS: 8 of 8 cells finished; task $VICTIM was requeued mid-run and resumed from its checkpoint"
