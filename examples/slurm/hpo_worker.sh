#!/usr/bin/env bash
# One `hpo` worker of a shared study: what each task of hpo_array.sbatch runs, and what you
# can run by hand on any machine that sees the database and the shared directory.
#
#   DATAAUG_STUDY_STORAGE=postgresql://user:password@db-host:5432/optuna \
#   STUDY_NAME=redsm5 SHARED_DIR=/shared/experiments examples/slurm/hpo_worker.sh [OVERRIDE ...]
#
# Environment:
#   DATAAUG_STUDY_STORAGE  the study database (required; never on the command line, where
#                          `ps` and the Slurm accounting would show its password)
#   STUDY_NAME             the study every worker joins (default: redsm5)
#   SHARED_DIR             experiments directory on a filesystem every node sees (required)
#   HPO_CONFIG             default: configs/hpo.yaml
#   NUM_TRIALS             finished trials across all workers (default: the config's)
#   PYTHON                 default: python
#   DRY_RUN=1              print the command instead of running it (any value but 0)
#
# Signals: SIGTERM (preemption, scancel) is passed to the worker, which stops its trial at a
# safe point, marks it interrupted and exits 143 (a second SIGTERM, as Slurm also signals the
# worker itself, changes nothing); the trial is re-queued with the same parameters by the
# next worker that starts. SIGUSR1 (sbatch --signal=B:USR1@300, the time
# limit is near) does the same and asks Slurm to requeue this job.
set -euo pipefail

: "${DATAAUG_STUDY_STORAGE:?set DATAAUG_STUDY_STORAGE to the study database URL}"
: "${SHARED_DIR:?set SHARED_DIR to an experiments directory every node sees}"
STUDY_NAME=${STUDY_NAME:-redsm5}
HPO_CONFIG=${HPO_CONFIG:-configs/hpo.yaml}
PYTHON=${PYTHON:-python}

command=(
  "$PYTHON" -m dataaug_multi_both.cli.hpo
  --config "$HPO_CONFIG"
  --study-name "$STUDY_NAME"
  --study-dir "$SHARED_DIR/study_$STUDY_NAME"
)
if [[ -n "${NUM_TRIALS:-}" ]]; then
  command+=(--num-trials "$NUM_TRIALS")
fi
# quoted for Hydra, so that a `,` or `(` in the path is not read as a sweep or a function
if [[ "$SHARED_DIR" == *[\'\\]* ]]; then
  echo "SHARED_DIR must not contain ' or \\: $SHARED_DIR" >&2
  exit 2
fi
command+=("output.experiments_dir='$SHARED_DIR'" "$@")

if [[ "${DRY_RUN:-0}" != 0 ]]; then  # DRY_RUN=1 (or yes, true): print only
  printf '%q ' "${command[@]}"
  printf '\n'
  exit 0
fi

worker=
requeue=0
on_signal() {  # the worker stops at a safe point; wait for it
  [[ "$1" == USR1 ]] && requeue=1
  [[ -n "$worker" ]] && kill -TERM "$worker" 2>/dev/null
  return 0
}
trap 'on_signal TERM' TERM
trap 'on_signal USR1' USR1
trap 'on_signal TERM' INT
"${command[@]}" &
worker=$!
status=0
while true; do  # `wait` returns early when a trapped signal arrives: wait again
  wait "$worker" && status=0 || status=$?
  kill -0 "$worker" 2>/dev/null || break
done
if [[ "$requeue" == 1 && -n "${SLURM_JOB_ID:-}" ]]; then
  # every task of an array has a job id of its own
  scontrol requeue "$SLURM_JOB_ID" || echo "could not requeue job $SLURM_JOB_ID" >&2
fi
exit "$status"
