#!/bin/bash
# The part of ZooKeeper's zkServer.sh the official image's command uses:
# `zkServer.sh start-foreground` runs the server in the foreground.
set -euo pipefail

if [ "${1:-}" != start-foreground ]; then
  echo "usage: zkServer.sh start-foreground (this stand-in runs the server in the foreground only)" >&2
  exit 2
fi
conf_dir=${ZOO_CONF_DIR:-/conf}
# JVMFLAGS as in zkEnv.sh; the default heap keeps three servers small on one machine.
# shellcheck disable=SC2086
exec java ${JVMFLAGS:--Xmx512m} \
  -cp "$conf_dir:/usr/share/java/zookeeper.jar" \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$conf_dir/zoo.cfg"
