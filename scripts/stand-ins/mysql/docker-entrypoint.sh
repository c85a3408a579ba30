#!/bin/bash
# First start: creates the data directory, then the database and account named by
# the MYSQL_* variables the official mysql image reads (MYSQL_DATABASE, MYSQL_USER,
# MYSQL_PASSWORD, and one of MYSQL_ROOT_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD,
# MYSQL_ALLOW_EMPTY_PASSWORD). Then runs the server; arguments starting with '-'
# are server options, as with the official image.
set -euo pipefail

if [ "${1:0:1}" = - ]; then
  set -- mariadbd "$@"
fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then
  exec "$@"
fi
shift
server=(mariadbd --user=mysql "$@")

datadir=/var/lib/mysql
mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld

# SQL string literal: passwords reach the server on standard input, never as
# arguments, so they only need quoting.
sql_quote() {
  local value=${1//\\/\\\\}
  printf "'%s'" "${value//\'/\\\'}"
}
sql_ident() {
  # shellcheck disable=SC2016  # the backquotes are SQL's identifier quotes
  printf '`%s`' "${1//\`/\`\`}"
}

if [ ! -d "$datadir/mysql" ]; then
  root_password=${MYSQL_ROOT_PASSWORD:-}
  if [ -z "$root_password" ]; then
    if [ -n "${MYSQL_RANDOM_ROOT_PASSWORD:-}" ]; then
      root_password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 || true)
      # Printed once, on the first start, as the official image does.
      echo "GENERATED ROOT PASSWORD: $root_password"
    elif [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
      echo "error: database is uninitialized and no root password option is set" >&2
      echo "  (MYSQL_ROOT_PASSWORD, MYSQL_RANDOM_ROOT_PASSWORD or MYSQL_ALLOW_EMPTY_PASSWORD)" >&2
      exit 1
    fi
  fi

  echo "initialising the database in $datadir"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
    --auth-root-authentication-method=socket >/dev/null

  # A temporary server without networking, so that nothing can connect (or pass
  # a TCP healthcheck) before the accounts exist.
  socket=/run/mysqld/init.sock
  "${server[@]}" --skip-networking --socket="$socket" &
  init_pid=$!
  for _ in $(seq 1 60); do
    mariadb-admin --socket="$socket" --user=root ping >/dev/null 2>&1 && break
    # A server that refused its options (an unknown collation, say) is gone: stop here.
    kill -0 "$init_pid" 2>/dev/null || { echo "error: the server did not start" >&2; exit 1; }
    sleep 1
  done

  {
    echo "DELETE FROM mysql.global_priv WHERE User = '';"
    if [ -n "$root_password" ]; then
      # root keeps its socket login inside the container, and gets the password too.
      echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket" \
        "OR mysql_native_password USING PASSWORD($(sql_quote "$root_password"));"
      echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_quote "$root_password");"
      echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    fi
    if [ -n "${MYSQL_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE");"
    fi
    if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
      echo "CREATE USER $(sql_quote "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_quote "$MYSQL_PASSWORD");"
      if [ -n "${MYSQL_DATABASE:-}" ]; then
        echo "GRANT ALL ON $(sql_ident "$MYSQL_DATABASE").* TO $(sql_quote "$MYSQL_USER")@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" --user=root

  # SIGTERM is a clean shutdown for mariadbd.
  kill -TERM "$init_pid"
  wait "$init_pid"
  echo "database initialised; starting the server"
fi

exec "${server[@]}"
