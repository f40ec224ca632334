#!/usr/bin/env bash
# cluster.sh measures cluster mode side by side in one run: the same
# `runnel bench` workloads against runnel on the disk engine, on one
# embedded NATS node (R1), and on a 3-node nats-server cluster (R3) through
# one and through two gateways, with the nodes syncing at JetStream's
# default interval and with `sync_interval: always`. It prints one table per
# workload.
#
#   bench/cluster.sh                                   # every target and workload, 10 s each
#   bench/cluster.sh --duration 20s --targets disk,r3-1gw --workloads t
#   bench/cluster.sh --out DIR --pprof     # keep reports and logs in DIR, with a CPU profile and a goroutine dump of the first gateway per run
#
# Targets (--targets, default all):
#   disk            runnel serve (disk engine, fsync before every acknowledgement)
#   r1              runnel serve --engine jetstream (one embedded node, sync always)
#   r1-interval     the same with --nats-sync interval
#   r3-1gw          3 nats-server processes (default sync), 1 gateway
#   r3-2gw          the same cluster, 2 gateways (bench --spread)
#   r3-always-1gw   3 nats-server processes with sync_interval: always, 1 gateway
#   r3-always-2gw   the same, 2 gateways
# Workloads (--workloads, default t,l):
#   t   write throughput: 1 KiB records, PutRecords of 500, 8 producers,
#       4 shards, consumers reading at the same time
#   l   end-to-end latency at a steady 5,000 records/s (PutRecords of 50,
#       4 producers, 4 shards)
#
# The producers and consumers use the tool's lightweight client (raw), so
# that the tool takes less of the machine. The nats-server binary is built
# from the module version in go.mod, configured as docs/CLUSTER.md says.
# Everything started is stopped on exit; RUNNEL_BIN=path uses a prebuilt
# runnel binary.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=10s
TARGETS=disk,r1,r1-interval,r3-1gw,r3-2gw,r3-always-1gw,r3-always-2gw
WORKLOADS=t,l
KEEP=
PPROF=0
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--workloads) WORKLOADS=$2; shift 2 ;;
	--out) KEEP=$2; shift 2 ;;
	--pprof) PPROF=1; shift ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/runnel-cluster.XXXXXX")
OUT=${KEEP:-$WORK/results}
mkdir -p "$OUT"
PIDS=()
stop_all() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

cd "$ROOT"
echo "building runnel, nats-server and the table helper in $WORK" >&2
if [ -n "${RUNNEL_BIN:-}" ]; then cp "$RUNNEL_BIN" "$WORK/runnel"; else go build -o "$WORK/runnel" ./cmd/runnel; fi
go build -o "$WORK/nats-server" github.com/nats-io/nats-server/v2
go build -o "$WORK/table" ./bench/table

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

waitport() {
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "cluster.sh: nothing listens on port $1 after 30 s" >&2
	return 1
}

# start_nats SYNC starts three nats-server processes; NATS_URLS is set.
start_nats() {
	local sync=$1 i routes="" cp=() p=() urls=()
	for i in 1 2 3; do p[$i]=$(freeport); cp[$i]=$(freeport); done
	for i in 1 2 3; do routes="$routes${routes:+, }nats://127.0.0.1:${cp[$i]}"; done
	for i in 1 2 3; do
		mkdir -p "$WORK/nats/n$i"
		cat >"$WORK/nats/n$i.conf" <<-EOF
			server_name: n$i
			listen: 127.0.0.1:${p[$i]}
			max_payload: 16MB
			max_pending: 256MB
			jetstream {
			  store_dir: "$WORK/nats/n$i"
			  $( [ "$sync" = always ] && echo "sync_interval: always" )
			  limits { batch { max_msgs: 10000 } }
			}
			cluster {
			  name: runnel
			  listen: 127.0.0.1:${cp[$i]}
			  routes: [$routes]
			}
		EOF
		"$WORK/nats-server" -c "$WORK/nats/n$i.conf" >>"$OUT/nats.n$i.log" 2>&1 &
		PIDS+=($!)
		urls+=("nats://127.0.0.1:${p[$i]}")
	done
	for i in 1 2 3; do waitport "${p[$i]}"; done
	NATS_URLS=$(IFS=,; echo "${urls[*]}")
}

# start_gateway ARGS... starts `runnel serve` on a free port; GW_URL is set,
# and with --pprof PPROF_URL for the first gateway of a target.
start_gateway() {
	local port pport extra=()
	port=$(freeport)
	if [ "$PPROF" = 1 ] && [ -z "${PPROF_URL:-}" ]; then
		pport=$(freeport)
		extra=(--pprof "127.0.0.1:$pport")
		PPROF_URL=http://127.0.0.1:$pport
	fi
	"$WORK/runnel" serve --listen "127.0.0.1:$port" --admin-listen off --transition-delay 0s --log-level warn "${extra[@]}" "$@" \
		>>"$OUT/gateway.log" 2>&1 &
	PIDS+=($!)
	waitport "$port"
	GW_URL=http://127.0.0.1:$port
}

# setup TARGET starts the target; ENDPOINT and SPREAD are set.
setup() {
	rm -rf "$WORK/data" "$WORK/nats"
	mkdir -p "$WORK/data" "$WORK/nats"
	SPREAD=()
	PPROF_URL=
	case $1 in
	disk) start_gateway --data-dir "$WORK/data/gw1" ;;
	r1) start_gateway --engine jetstream --data-dir "$WORK/data/gw1" ;;
	r1-interval) start_gateway --engine jetstream --nats-sync interval --data-dir "$WORK/data/gw1" ;;
	r3-1gw|r3-2gw|r3-always-1gw|r3-always-2gw)
		case $1 in r3-always-*) start_nats always ;; *) start_nats interval ;; esac
		start_gateway --engine jetstream --nats "$NATS_URLS" --data-dir "$WORK/data/gw1"
		case $1 in
		*-2gw)
			local first=$GW_URL
			sleep 1 # the metadata buckets get their leaders
			start_gateway --engine jetstream --nats "$NATS_URLS" --data-dir "$WORK/data/gw2"
			SPREAD=(--spread "$GW_URL")
			GW_URL=$first
			;;
		esac
		;;
	*) echo "cluster.sh: unknown target $1" >&2; return 1 ;;
	esac
	ENDPOINT=$GW_URL
}

flags() {
	case $1 in
	t) echo "--shards 4 --producers 8 --batch 500 --size 1024 --keys 1024" ;;
	l) echo "--shards 4 --producers 4 --batch 50 --size 1024 --keys 1024 --rate 5000 --poll-interval 10ms" ;;
	esac
}
desc() {
	case $1 in
	t) echo "write throughput, 1 KiB PutRecords of 500, 8 producers, 4 shards, reading meanwhile" ;;
	l) echo "end-to-end latency at 5,000 records/s, PutRecords of 50, 4 producers, 4 shards" ;;
	esac
}

IFS=, read -ra TL <<<"$TARGETS"
IFS=, read -ra WL <<<"$WORKLOADS"
for wl in "${WL[@]}"; do echo "$wl|$(desc "$wl")|$(flags "$wl")" >>"$OUT/workloads"; done
for target in "${TL[@]}"; do
	for wl in "${WL[@]}"; do
		echo "== $target, workload $wl" >&2
		if ! setup "$target"; then
			printf '{"error":"%s failed to start"}\n' "$target" >"$OUT/$wl.$target.json"
			stop_all
			continue
		fi
		echo "== $target, workload $wl" >>"$OUT/gateway.log"
		if [ -n "$PPROF_URL" ]; then
			secs=$(("$("$WORK/table" -seconds "$DURATION")" - 1))
			(sleep 2; curl -s -o "$OUT/$wl.$target.pprof" "$PPROF_URL/debug/pprof/profile?seconds=$secs") &
			(sleep $((secs / 2 + 2)); curl -s -o "$OUT/$wl.$target.goroutines" "$PPROF_URL/debug/pprof/goroutine?debug=1") &
		fi
		# shellcheck disable=SC2046
		"$WORK/runnel" bench --endpoint "$ENDPOINT" "${SPREAD[@]}" --duration "$DURATION" \
			--producer-client raw --consumer-client raw --json $(flags "$wl") \
			>"$OUT/$wl.$target.json" 2>"$OUT/$wl.$target.log" || true
		stop_all
	done
done
"$WORK/table" -dir "$OUT" -targets "$TARGETS"
