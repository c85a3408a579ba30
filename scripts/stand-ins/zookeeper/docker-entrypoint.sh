#!/bin/bash
# Writes zoo.cfg and myid from the ZOO_* variables the official zookeeper image
# reads (the ones this stack uses, and the common tuning ones), then runs the
# command as the zookeeper user.
set -euo pipefail

conf_dir=${ZOO_CONF_DIR:-/conf}
data_dir=${ZOO_DATA_DIR:-/data}
data_log_dir=${ZOO_DATA_LOG_DIR:-/datalog}

if [ "$(id -u)" = 0 ]; then
  # A fresh named volume is owned by root: hand it to the server's user.
  chown -R zookeeper:zookeeper "$conf_dir" "$data_dir" "$data_log_dir"
fi

# As in the official image, a zoo.cfg already present (mounted by the user) wins.
if [ ! -f "$conf_dir/zoo.cfg" ]; then
  {
    echo "dataDir=$data_dir"
    echo "dataLogDir=$data_log_dir"
    echo "tickTime=${ZOO_TICK_TIME:-2000}"
    echo "initLimit=${ZOO_INIT_LIMIT:-5}"
    echo "syncLimit=${ZOO_SYNC_LIMIT:-2}"
    echo "autopurge.snapRetainCount=${ZOO_AUTOPURGE_SNAPRETAINCOUNT:-3}"
    echo "autopurge.purgeInterval=${ZOO_AUTOPURGE_PURGEINTERVAL:-0}"
    echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}"
    echo "standaloneEnabled=${ZOO_STANDALONE_ENABLED:-true}"
    echo "admin.enableServer=${ZOO_ADMINSERVER_ENABLED:-true}"
    if [ -n "${ZOO_4LW_COMMANDS_WHITELIST:-}" ]; then
      echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
    fi
    # ZOO_SERVERS is a whitespace-separated list of server.N=host:peer:election;client.
    if [ -n "${ZOO_SERVERS:-}" ]; then
      for server in $ZOO_SERVERS; do echo "$server"; done
    else
      echo "server.1=localhost:2888:3888;2181"
    fi
  } > "$conf_dir/zoo.cfg"
  # Console logging only: a container's log is its standard output.
  cat > "$conf_dir/log4j.properties" <<'LOG4J'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
LOG4J
  chown zookeeper:zookeeper "$conf_dir/zoo.cfg" "$conf_dir/log4j.properties" 2>/dev/null || true
fi

if [ ! -f "$data_dir/myid" ]; then
  echo "${ZOO_MY_ID:-1}" > "$data_dir/myid"
  chown zookeeper:zookeeper "$data_dir/myid" 2>/dev/null || true
fi

if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=zookeeper --regid=zookeeper --init-groups "$@"
fi
exec "$@"
