#!/usr/bin/env bash
# Slurm Prolog: make sure this node's Ferry agent runs (in Docker) before a job starts.
# A reboot since the agent last started (boot id changed) means a fresh container; the
# agent rebuilds its index from /nvme/ferry and refills remembered warms by itself.
set -euo pipefail
STATE=/var/lib/ferry
mkdir -p "$STATE"
boot_id=$(cat /proc/sys/kernel/random/boot_id)
if [[ "$(cat "$STATE/boot_id" 2>/dev/null)" != "$boot_id" ]]; then
  docker rm -f ferry-agent >/dev/null 2>&1 || true
  fusermount -uz /mnt/ferry 2>/dev/null || true
  echo "$boot_id" > "$STATE/boot_id"
fi
if ! docker inspect -f '{{.State.Running}}' ferry-agent 2>/dev/null | grep -q true; then
  docker rm -f ferry-agent >/dev/null 2>&1 || true
  docker run -d --name ferry-agent --restart unless-stopped --network host \
    --device /dev/fuse --cap-add SYS_ADMIN --security-opt apparmor:unconfined \
    -v /nvme/ferry:/cache -v /mnt/ferry:/mnt/ferry:rshared \
    --env-file /etc/ferry/agent.env \
    ferry-agent:latest --cache-dir /cache --mount /mnt/ferry --cache-size 5TiB >/dev/null
fi
for _ in $(seq 1 60); do
  curl -fsS http://127.0.0.1:8788/_ferry/status >/dev/null && exit 0
  sleep 1
done
echo "ferry agent did not become ready" >&2
exit 1
