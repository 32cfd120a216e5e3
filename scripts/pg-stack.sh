#!/usr/bin/env bash
# The production Temporal engine on this machine, without Docker: the real Temporal server
# (go.temporal.io/server v1.29.1, all services in one process) on PostgreSQL, plus the
# Temporal UI server. Used by `make run-pg` and `make test-pg`.
#
#   scripts/pg-stack.sh start        create databases, set up schemas, start server and UI
#   scripts/pg-stack.sh stop [--drop] stop what `start` started (--drop: also drop the databases)
#   scripts/pg-stack.sh address      print the frontend address of a started stack
#
# Environment (defaults in brackets):
#   TEMPORAL_PG_DB [temporal_pg], TEMPORAL_PG_VISIBILITY_DB [temporal_pg_visibility]
#   TEMPORAL_PG_PORT [7233]  frontend gRPC port; "auto" picks free ports. The other services
#                            use fixed offsets from it: history +1, matching +2, worker +6,
#                            frontend HTTP +10, membership -300/-299/-298/-294.
#   TEMPORAL_PG_UI_PORT [8233] ("auto" picks a free one, "off" starts no UI)
#   TEMPORAL_PG_DATA_DIR [data/temporal-pg]  rendered config, logs, pid files
#   TEMPORAL_PG_LOG_LEVEL [warn]
#   PGHOST [127.0.0.1], PGPORT [5432], PGUSER [postgres], PGPASSWORD []
#   BIN [./bin]  holds pg/server, pg/sql, ui/server and temporal (`make` installs them)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/bin}"
SERVER_VERSION="v1.29.1"

DB="${TEMPORAL_PG_DB:-temporal_pg}"
VISIBILITY_DB="${TEMPORAL_PG_VISIBILITY_DB:-temporal_pg_visibility}"
PORT="${TEMPORAL_PG_PORT:-7233}"
UI_PORT="${TEMPORAL_PG_UI_PORT:-8233}"
DATA_DIR="${TEMPORAL_PG_DATA_DIR:-$ROOT/data/temporal-pg}"
LOG_LEVEL="${TEMPORAL_PG_LOG_LEVEL:-warn}"
NAMESPACE="default"
SEARCH_ATTRIBUTES=(PartnerId CustomerId OfferId SubscriptionStatus)
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
PGPASSWORD="${PGPASSWORD:-}"

mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)" # absolute: the dynamic config path must be

log() { echo "pg-stack: $*" >&2; }
die() { log "$*"; exit 1; }

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The ports of every service, derived from the frontend port.
service_ports() { local p=$1; echo "$p $((p + 1)) $((p + 2)) $((p + 6)) $((p + 10)) $((p - 300)) $((p - 299)) $((p - 298)) $((p - 294))"; }

pick_base_port() {
	local base p ok
	for _ in $(seq 1 50); do
		# Below 32768: the cluster_membership table stores ports as smallint (and the range
		# stays clear of the kernel's ephemeral ports).
		base=$((20300 + RANDOM % 12400))
		ok=1
		for p in $(service_ports "$base"); do port_free "$p" || { ok=0; break; }; done
		[[ $ok == 1 ]] && { echo "$base"; return; }
	done
	die "no free port range found"
}

pick_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((15000 + RANDOM % 5000))
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free port found"
}

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

create_database() {
	if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")" != 1 ]]; then
		log "creating database $1"
		psql_admin -c "CREATE DATABASE \"$1\""
	fi
}

schema_dir() {
	local dir
	# Outside the module, so go.mod/go.sum stay untouched.
	dir="$(cd / && GOWORK=off GOFLAGS= go mod download -json "go.temporal.io/server@$SERVER_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
	[[ -d "$dir/schema/postgresql/v12" ]] || die "schema files not found in the module cache ($dir)"
	echo "$dir/schema/postgresql/v12"
}

# setup_schema DB VERSIONED_DIR: idempotent (setup-schema -v 0.0 keeps a newer version;
# update-schema applies only the versions not yet applied).
setup_schema() {
	local sql=("$BIN/pg/sql" --plugin postgres12 --ep "$PGHOST" -p "$PGPORT" -u "$PGUSER" --db "$1")
	[[ -n "$PGPASSWORD" ]] && sql+=(--pw "$PGPASSWORD")
	"${sql[@]}" setup-schema -v 0.0 >>"$DATA_DIR/schema.log" 2>&1 || die "setup-schema $1 failed; see $DATA_DIR/schema.log"
	"${sql[@]}" update-schema -d "$2" >>"$DATA_DIR/schema.log" 2>&1 || die "update-schema $1 failed; see $DATA_DIR/schema.log"
}

render() { # render TEMPLATE OUT
	sed -e "s|@FRONTEND_PORT@|$PORT|g" \
		-e "s|@HISTORY_PORT@|$((PORT + 1))|g" \
		-e "s|@MATCHING_PORT@|$((PORT + 2))|g" \
		-e "s|@WORKER_PORT@|$((PORT + 6))|g" \
		-e "s|@FRONTEND_HTTP_PORT@|$((PORT + 10))|g" \
		-e "s|@FRONTEND_MEMBERSHIP_PORT@|$((PORT - 300))|g" \
		-e "s|@HISTORY_MEMBERSHIP_PORT@|$((PORT - 299))|g" \
		-e "s|@MATCHING_MEMBERSHIP_PORT@|$((PORT - 298))|g" \
		-e "s|@WORKER_MEMBERSHIP_PORT@|$((PORT - 294))|g" \
		-e "s|@UI_PORT@|$UI_PORT|g" \
		-e "s|@DB@|$DB|g" -e "s|@VISIBILITY_DB@|$VISIBILITY_DB|g" \
		-e "s|@PG_HOST@|$PGHOST|g" -e "s|@PG_PORT@|$PGPORT|g" \
		-e "s|@PG_USER@|$PGUSER|g" -e "s|@PG_PASSWORD@|$PGPASSWORD|g" \
		-e "s|@LOG_LEVEL@|$LOG_LEVEL|g" \
		-e "s|@DYNAMIC_CONFIG@|$DATA_DIR/config/dynamicconfig.yaml|g" \
		"$1" >"$2"
}

# running PIDFILE: the process in PIDFILE is alive and is ours (its command line names the data
# directory; right after the fork, before exec, it is still this script).
running() {
	local pid cmdline
	[[ -f "$1" ]] || return 1
	pid="$(cat "$1")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
	[[ "$cmdline" == *"$DATA_DIR"* || "$cmdline" == *pg-stack.sh* ]]
}

alive() { kill -0 "$(cat "$1")" 2>/dev/null; } # alive PIDFILE (just started: cmdline may not be exec'd yet)

temporal() { "$BIN/temporal" "$@" --address "127.0.0.1:$PORT" --command-timeout 10s; }

start() {
	for b in pg/server pg/sql ui/server temporal; do
		[[ -x "$BIN/$b" ]] || die "$BIN/$b missing (make installs it: make run-pg / make test-pg)"
	done
	command -v psql >/dev/null || die "psql not found"
	pg_isready -q || die "PostgreSQL does not answer at $PGHOST:$PGPORT"
	if running "$DATA_DIR/server.pid"; then
		die "already running from $DATA_DIR (pid $(cat "$DATA_DIR/server.pid")); run: $0 stop"
	fi

	[[ "$PORT" == auto ]] && PORT="$(pick_base_port)"
	[[ "$UI_PORT" == auto ]] && UI_PORT="$(pick_port)"
	local p
	for p in $(service_ports "$PORT"); do
		port_free "$p" || die "port $p is in use (the stack needs $(service_ports "$PORT"))"
	done

	# From here on, a failure stops whatever was started.
	trap 'rc=$?; if ((rc != 0)); then stop; fi; exit $rc' EXIT

	: >"$DATA_DIR/schema.log"
	create_database "$DB"
	create_database "$VISIBILITY_DB"
	local schemas
	schemas="$(schema_dir)"
	log "schema: $DB"
	setup_schema "$DB" "$schemas/temporal/versioned"
	log "schema: $VISIBILITY_DB"
	setup_schema "$VISIBILITY_DB" "$schemas/visibility/versioned"

	mkdir -p "$DATA_DIR/config" "$DATA_DIR/ui/config"
	render "$ROOT/deploy/temporal-pg/development.yaml" "$DATA_DIR/config/development.yaml"
	cp "$ROOT/deploy/temporal-pg/dynamicconfig.yaml" "$DATA_DIR/config/dynamicconfig.yaml"
	render "$ROOT/deploy/temporal-pg/ui.yaml" "$DATA_DIR/ui/config/development.yaml"
	echo "127.0.0.1:$PORT" >"$DATA_DIR/address"
	printf 'DB=%s\nVISIBILITY_DB=%s\n' "$DB" "$VISIBILITY_DB" >"$DATA_DIR/databases"

	log "starting Temporal server $SERVER_VERSION on 127.0.0.1:$PORT (log: $DATA_DIR/server.log)"
	nohup "$BIN/pg/server" --root "$DATA_DIR" --config config --env development --allow-no-auth start \
		>"$DATA_DIR/server.log" 2>&1 </dev/null &
	echo $! >"$DATA_DIR/server.pid"

	local deadline=$((SECONDS + 90))
	until temporal operator cluster health >/dev/null 2>&1; do
		alive "$DATA_DIR/server.pid" || { tail -20 "$DATA_DIR/server.log" >&2; die "server exited; see $DATA_DIR/server.log"; }
		((SECONDS < deadline)) || { die "server not healthy after 90s; see $DATA_DIR/server.log"; }
		sleep 0.5
	done

	if ! temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
		log "creating namespace $NAMESPACE"
		temporal operator namespace create --namespace "$NAMESPACE" --retention 72h >/dev/null
	fi
	# The namespace cache refreshes every few seconds; wait until the frontend serves it
	# (describe reads the database, listing search attributes needs the cache).
	local existing name
	until existing="$(temporal operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null)"; do
		((SECONDS < deadline)) || die "namespace $NAMESPACE not usable"
		sleep 0.5
	done
	for name in "${SEARCH_ATTRIBUTES[@]}"; do
		if ! grep -qw "$name" <<<"$existing"; then
			log "registering search attribute $name (Keyword)"
			temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type Keyword >/dev/null
		fi
	done
	# Search attributes on SQL visibility are namespace aliases: wait until a query accepts them
	# all, then one more namespace-cache refresh so history and matching see them too.
	local query
	query="$(printf '%s="probe" AND ' "${SEARCH_ATTRIBUTES[@]}")"
	query="${query% AND }"
	until temporal workflow list --namespace "$NAMESPACE" --query "$query" --limit 1 >/dev/null 2>&1; do
		((SECONDS < deadline)) || { die "search attributes not usable"; }
		sleep 0.5
	done
	sleep 3

	if [[ "$UI_PORT" != off ]]; then
		port_free "$UI_PORT" || { die "UI port $UI_PORT is in use"; }
		log "starting Temporal UI on http://127.0.0.1:$UI_PORT (log: $DATA_DIR/ui.log)"
		nohup "$BIN/ui/server" --root "$DATA_DIR/ui" --config config --env development start \
			>"$DATA_DIR/ui.log" 2>&1 </dev/null &
		echo $! >"$DATA_DIR/ui.pid"
		until ! port_free "$UI_PORT"; do
			alive "$DATA_DIR/ui.pid" || { die "UI server exited; see $DATA_DIR/ui.log"; }
			((SECONDS < deadline)) || { die "UI server not listening; see $DATA_DIR/ui.log"; }
			sleep 0.2
		done
	fi
	log "ready: Temporal 127.0.0.1:$PORT (databases $DB, $VISIBILITY_DB)$([[ "$UI_PORT" != off ]] && echo ", UI http://127.0.0.1:$UI_PORT")"
}

stop_pid() { # stop_pid NAME: TERM, up to 20 s, then KILL
	local file="$DATA_DIR/$1.pid" pid
	if running "$file"; then
		pid="$(cat "$file")"
		log "stopping $1 (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then
			log "$1 did not stop in 20s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$file"
}

stop() {
	stop_pid ui
	stop_pid server
	if [[ "${1:-}" == --drop ]]; then
		if [[ -f "$DATA_DIR/databases" ]]; then
			# shellcheck disable=SC1091
			source "$DATA_DIR/databases"
		fi
		for d in "$DB" "$VISIBILITY_DB"; do
			log "dropping database $d"
			psql_admin -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)"
		done
	fi
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
address) cat "$DATA_DIR/address" ;;
*) echo "usage: $0 start | stop [--drop] | address" >&2; exit 2 ;;
esac
