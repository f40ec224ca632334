#!/usr/bin/env bash
# compare.sh runs the same `runnel bench` workloads against runnel and the two
# best-known Kinesis emulators, kinesalite and kinesis-local (kinesis-mock on
# Node), in one run on loopback, and prints each result and the ratios
# runnel/peer. Targets: runnel (disk engine, fsync before every
# acknowledgement), kinesalite (in memory, its default), kinesalite-disk
# (kinesalite with --path: its LevelDB store on disk) and kinesis-local.
#
#   bench/compare.sh                       # all targets, all workloads, 10 s each
#   bench/compare.sh --duration 20s --targets runnel,kinesalite --workloads a,d
#
# Workloads (--workloads, default all of a-j): a-c write throughput, d-e
# end-to-end latency, f write throughput as a with the consumers reading
# back only after producing (--read-after), so that the load tool's reading
# does not take CPU from the target while it is written to, g as f with the
# producers on the tool's lightweight JSON client instead of the SDK
# (--producer-client raw), so that the tool's own serialisation takes less
# of the machine, h as g with 8 producers, i as a with producers and
# consumers on the lightweight client, j as a with 8 producers (the SDK
# writing and reading at once: the workload of the CPU-per-record figure);
# workload() below gives each one's flags.
#
# Every result also shows what the run cost the target's own process: its
# CPU time (user + system) per record written and read back once, and its
# peak resident memory. `runnel bench` finds the process from the port it
# listens on (/proc/net/tcp and /proc/PID/fd) and reads /proc/PID/stat and
# /proc/PID/status, so it works alike for runnel, kinesalite and
# kinesis-local (Node processes). On a machine whose cores the load tool
# shares with the target, CPU per record is the fairer comparison:
# throughput is bounded by the tool as much as by the target.
#
# The peers are installed from the npm registry into bench/.peers (git-ignored)
# on the first run; runnel is built from this tree. Everything started is
# stopped on exit. A target that fails to build, start or answer is reported
# as failed; the others are still measured. Needs Go and, for the peers,
# Node.js with npm. RUNNEL_BIN=path uses a prebuilt runnel binary;
# RUNNEL_PEERS_DIR moves the npm cache.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RUNNEL_PEERS_DIR:-$ROOT/bench/.peers}
KINESALITE_VERSION=3.3.3
KINESIS_LOCAL_VERSION=0.6.2

DURATION=10s
TARGETS=runnel,kinesalite,kinesalite-disk,kinesis-local
WORKLOADS=a,b,c,d,e,f,g,h,i,j
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--workloads) WORKLOADS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/runnel-compare.XXXXXX")
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT"
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK/runnel-data" "$WORK/kinesalite-data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port BASE: the first free port from BASE.
pick_port() {
	local p=$1
	while ! port_free "$p"; do p=$((p + 1)); done
	echo "$p"
}

# wait_port PID PORT SECONDS: wait until PORT accepts connections while PID
# lives.
wait_port() {
	local pid=$1 port=$2 i
	for ((i = 0; i < $3 * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
		if ! port_free "$port"; then return 0; fi
		sleep 0.1
	done
	return 1
}

# The load tool: `runnel bench` if the runnel binary builds and has it,
# otherwise the same tool built on its own.
cd "$ROOT"
RUNNEL_OK=1
RUNNEL_WHY=
if [ -n "${RUNNEL_BIN:-}" ]; then
	# A prebuilt server (and load tool) instead of this tree's.
	cp "$RUNNEL_BIN" "$WORK/runnel"
elif ! go build -o "$WORK/runnel" ./cmd/runnel 2>"$WORK/runnel-build.log"; then
	RUNNEL_OK=0
	RUNNEL_WHY="go build ./cmd/runnel failed: $(head -c 300 "$WORK/runnel-build.log" | tr '\n' ' ')"
fi
if [ "$RUNNEL_OK" = 1 ] && "$WORK/runnel" bench -h >/dev/null 2>&1; then
	BENCH=("$WORK/runnel" bench)
else
	go build -o "$WORK/bench" ./bench/driver
	BENCH=("$WORK/bench")
fi
go build -o "$WORK/table" ./bench/table
TABLE=$WORK/table
log "load tool: ${BENCH[*]}"

# The peers, installed once.
need_npm() {
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		log "node/npm not found: cannot run $1"
		return 1
	fi
	if [ ! -x "$CACHE/node_modules/.bin/kinesalite" ] || [ ! -f "$CACHE/node_modules/kinesis-local/main.js" ]; then
		log "installing kinesalite@$KINESALITE_VERSION and kinesis-local@$KINESIS_LOCAL_VERSION into $CACHE"
		mkdir -p "$CACHE"
		[ -f "$CACHE/package.json" ] || echo '{"private":true}' >"$CACHE/package.json"
		npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error \
			"kinesalite@$KINESALITE_VERSION" "kinesis-local@$KINESIS_LOCAL_VERSION" >&2 || return 1
	fi
}

# start TARGET: start it on a free loopback port and set ENDPOINT; return 1
# (with WHY set) if it cannot be started. A port that looked free may be
# taken on another address (kinesalite listens on ::), so it tries three.
start() {
	local off
	for off in 0 100 200; do
		start_at "$1" "$off" && return 0
		[ "$1" = runnel ] && [ "$RUNNEL_OK" != 1 ] && return 1
	done
	return 1
}

start_at() {
	local port pid off=$2
	WHY=
	case $1 in
	runnel)
		if [ "$RUNNEL_OK" != 1 ]; then WHY=$RUNNEL_WHY; return 1; fi
		port=$(pick_port $((45670 + off)))
		mkdir -p "$WORK/runnel-data"
		"$WORK/runnel" serve --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --data-dir "$WORK/runnel-data" >"$WORK/runnel.log" 2>&1 &
		pid=$!
		;;
	kinesalite)
		need_npm kinesalite || { WHY="could not install kinesalite"; return 1; }
		port=$(pick_port $((45680 + off)))
		"$CACHE/node_modules/.bin/kinesalite" --port "$port" --shardLimit 1000 >"$WORK/kinesalite.log" 2>&1 &
		pid=$!
		;;
	kinesalite-disk)
		# kinesalite with its LevelDB store on disk (--path): its durable
		# configuration, the counterpart of runnel's default.
		need_npm kinesalite || { WHY="could not install kinesalite"; return 1; }
		port=$(pick_port $((45685 + off)))
		mkdir -p "$WORK/kinesalite-data"
		"$CACHE/node_modules/.bin/kinesalite" --port "$port" --shardLimit 1000 --path "$WORK/kinesalite-data" >"$WORK/kinesalite-disk.log" 2>&1 &
		pid=$!
		;;
	kinesis-local)
		need_npm kinesis-local || { WHY="could not install kinesis-local"; return 1; }
		port=$(pick_port $((45690 + off)))
		local tls
		tls=$(pick_port $((port + 1)))
		# main.js reads its TLS certificate (server.json) from the
		# working directory.
		(cd "$CACHE/node_modules/kinesis-local" &&
			exec env KINESIS_MOCK_PLAIN_PORT="$port" KINESIS_MOCK_TLS_PORT="$tls" \
				SHARD_LIMIT=1000 LOG_LEVEL=WARN node main.js) >"$WORK/kinesis-local.log" 2>&1 &
		pid=$!
		;;
	*)
		WHY="unknown target"
		return 1
		;;
	esac
	PIDS+=("$pid")
	CURRENT_PID=$pid
	if ! wait_port "$pid" "$port" 30; then
		WHY="did not start listening on 127.0.0.1:$port (log: $(tail -c 300 "$WORK/$1.log" | tr '\n' ' '))"
		stop_current
		return 1
	fi
	ENDPOINT=http://127.0.0.1:$port
}

stop_current() {
	kill "$CURRENT_PID" 2>/dev/null || true
	wait "$CURRENT_PID" 2>/dev/null || true
}

# workload NAME: its description and flags.
workload() {
	case $1 in
	a) echo "1 KiB records, PutRecords batches of 500, 4 shards, 4 producers|--shards 4 --producers 4 --batch 500 --size 1024 --keys 1024" ;;
	b) echo "100 B records, PutRecord from 64 producers, 4 shards|--shards 4 --producers 64 --mode putrecord --size 100 --keys 4096" ;;
	c) echo "single partition key (ordering), 8 producers x PutRecords of 100 x 256 B, 4 shards|--shards 4 --producers 8 --batch 100 --size 256 --keys 1" ;;
	d) echo "end-to-end latency at 1,000 records/s, 512 B, batches of 10, 4 shards, GetRecords polling (5 ms pause when empty)|--shards 4 --producers 4 --batch 10 --size 512 --rate 1000 --poll-interval 5ms" ;;
	e) echo "end-to-end latency as d, with enhanced fan-out (SubscribeToShard) consumers|--shards 4 --producers 4 --batch 10 --size 512 --rate 1000 --consumer-mode efo" ;;
	f) echo "write throughput as a, consumers reading back after producing (--read-after)|--shards 4 --producers 4 --batch 500 --size 1024 --keys 1024 --read-after" ;;
	g) echo "write throughput as f, producers with the tool's lightweight JSON client instead of the SDK|--shards 4 --producers 4 --batch 500 --size 1024 --keys 1024 --read-after --producer-client raw" ;;
	h) echo "write throughput as g with 8 producers|--shards 4 --producers 8 --batch 500 --size 1024 --keys 1024 --read-after --producer-client raw" ;;
	i) echo "throughput as a, producers and consumers both on the tool's lightweight JSON client|--shards 4 --producers 4 --batch 500 --size 1024 --keys 1024 --producer-client raw --consumer-client raw" ;;
	j) echo "server CPU per record: as a with 8 producers (SDK writing, SDK polling consumers reading every record back once at the same time)|--shards 4 --producers 8 --batch 500 --size 1024 --keys 1024" ;;
	*) return 1 ;;
	esac
}

IFS=, read -r -a targets <<<"$TARGETS"
IFS=, read -r -a workloads <<<"$WORKLOADS"
for wl in "${workloads[@]}"; do
	workload "$wl" >/dev/null || { log "unknown workload $wl (have a, b, c, d, e, f, g, h, i, j)"; exit 2; }
done
# Bound every run: the duration, the drain and setup, and some slack.
secs=$("$TABLE" -seconds "$DURATION")
limit=$((secs + 120))

# Each workload gets a fresh target: started on an empty data directory
# after the previous one's data has been deleted and the filesystem synced,
# so that no run inherits another's data, heap or pending writeback. The
# targets of one workload run back to back, so that a ratio compares runs
# minutes apart at most on a machine whose speed drifts.
for wl in "${workloads[@]}"; do
	IFS='|' read -r desc flags <<<"$(workload "$wl")"
	log "== workload $wl"
	for target in "${targets[@]}"; do
		rm -rf "$WORK/runnel-data" "$WORK/kinesalite-data"
		sync
		if ! start "$target"; then
			log "$target: failed: $WHY"
			printf '{"error":%s}\n' "$(printf '%s' "$target failed to start: $WHY" | "$TABLE" -quote)" >"$OUT/$wl.$target.json"
			continue
		fi
		log "-- $target, workload $wl: $desc ($DURATION) at $ENDPOINT"
		# shellcheck disable=SC2086 # flags are words
		if ! timeout --kill-after=10 "$limit" "${BENCH[@]}" --endpoint "$ENDPOINT" --json --duration "$DURATION" \
			--drain-timeout 10s --setup-timeout 30s $flags >"$OUT/$wl.$target.json" 2>"$OUT/$wl.$target.log"; then
			log "$target, workload $wl: exit $? ($(tail -n 1 "$OUT/$wl.$target.log"))"
		fi
		if [ ! -s "$OUT/$wl.$target.json" ]; then
			printf '{"error":%s}\n' "$(tail -n 3 "$OUT/$wl.$target.log" | "$TABLE" -quote)" >"$OUT/$wl.$target.json"
		fi
		stop_current
	done
done

for wl in "${workloads[@]}"; do
	IFS='|' read -r desc flags <<<"$(workload "$wl")"
	echo "$wl|$desc|$flags"
done >"$OUT/workloads"
echo
echo "results in $OUT (${BENCH[*]} --duration $DURATION)"
"$TABLE" -dir "$OUT" -targets "$TARGETS"
