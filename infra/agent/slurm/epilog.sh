#!/usr/bin/env bash
# Slurm Epilog: the agent keeps running between jobs (its cache is the point); only a
# node being drained for maintenance stops it, so the mount never goes stale under a job.
set -uo pipefail
if scontrol show node "$(hostname -s)" | grep -q "State=.*DRAIN"; then
  docker stop --time 30 ferry-agent >/dev/null 2>&1 || true
fi
exit 0
