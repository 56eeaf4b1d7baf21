#!/usr/bin/env bash
# Start dockerd by hand (no systemd on these machines) unless one already answers.
# The PID goes to /run/bindtrace-dockerd.pid so only this daemon is ever stopped.
set -eu
if docker info >/dev/null 2>&1; then exit 0; fi
mkdir -p /var/log/bindtrace
setsid nohup /usr/sbin/dockerd --iptables=false --ip-masq=false --host unix:///run/docker.sock \
  >/var/log/bindtrace/dockerd.log 2>&1 </dev/null &
echo $! >/run/bindtrace-dockerd.pid
for _ in $(seq 1 300); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "dockerd did not come up; see /var/log/bindtrace/dockerd.log" >&2
exit 1
