#!/usr/bin/env bash
# run-demo.sh - the order flow of event-driven architecture texts, on zmesh.
#
#   order-service --orders.N.created-->  payment-service
#   payment-service --payments.N.completed-->  shipping-service
#   shipping-service --shipments.N.dispatched-->  (anyone)
#
# Starts mesh-tap (from PATH) to show the flow as it happens, then the three
# services, each a separate process on a mesh of its own (zmesh-demo-PID),
# so nothing else on this host can join. Everything stays on this host
# (discovery beacons go to 127.255.255.255). Waits for all of them with a
# deadline, kills what is left by PID, prints a summary and exits non-zero
# unless every order was paid for and shipped.
#
# usage: run-demo.sh [--bin DIR] [--orders N] [--timeout SECONDS]
#   --bin DIR   where order-service, payment-service and shipping-service
#               are (default: this script's directory, else PATH)
#   ZMESH_BEACON_PORT, when set, is passed on to every agent.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$here
orders=10
timeout=60

usage() {
    sed -n '/^# usage:/,/^#   ZMESH/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin=${2:?--bin needs a directory}; shift 2 ;;
    --orders) orders=${2:?--orders needs a number}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
case "$orders$timeout" in
*[!0-9]*) echo "run-demo: --orders and --timeout take numbers" >&2; exit 2 ;;
esac
if [ "$orders" -lt 1 ] || [ "$timeout" -lt 1 ]; then
    echo "run-demo: --orders and --timeout must be at least 1" >&2
    exit 2
fi

# Find a program in --bin, else on PATH.
find_program() {
    if [ -x "$bin/$1" ]; then
        echo "$bin/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        echo "run-demo: cannot find $1 (in $bin or on PATH)" >&2
        return 1
    fi
}
tap=$(find_program mesh-tap)
order_service=$(find_program order-service)
payment_service=$(find_program payment-service)
shipping_service=$(find_program shipping-service)

mesh="zmesh-demo-$$"
events=$((3 * orders))
work=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-demo.XXXXXX")
pids=()

# Kills whatever we started that still runs, by PID, and reaps it (and the
# tee behind mesh-tap, which ends when mesh-tap does).
stop_all() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "run-demo: mesh $mesh, $orders orders, deadline ${timeout}s"
echo "run-demo: mesh-tap shows every event as it passes:"

# The services' own deadline is a little shorter than ours, so they end by
# themselves and report; ours is the backstop.
service_ms=$(((timeout > 5 ? timeout - 3 : timeout) * 1000))

# Each waiting publisher counts mesh-tap among its subscribers, so the tap
# sees the whole flow from the first order on.
names=()
"$tap" --mesh "$mesh" --count "$events" --timeout "$timeout" \
    'orders.>' 'payments.>' 'shipments.>' > >(tee "$work/tap.out") &
pids+=($!) names+=(mesh-tap)
tap_pid=$!
"$shipping_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$service_ms" --min-subscribers 1 >"$work/shipping.out" &
pids+=($!) names+=(shipping-service)
"$payment_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$service_ms" --min-subscribers 2 >"$work/payment.out" &
pids+=($!) names+=(payment-service)
"$order_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$service_ms" --min-subscribers 2 >"$work/order.out" &
pids+=($!) names+=(order-service)
services=("${pids[@]:1}")

alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

# Wait for the services, then give the tap a moment to print the last
# shipments (it ends by itself after --count events).
end=$((SECONDS + timeout))
while alive "${services[@]}" && [ $SECONDS -lt $end ]; do
    sleep 0.2
done
tap_end=$((SECONDS + 3))
while alive "$tap_pid" && [ $SECONDS -lt $tap_end ]; do
    sleep 0.1
done
late=()
for i in "${!pids[@]}"; do
    alive "${pids[$i]}" && late+=("${names[$i]}")
done
if [ ${#late[@]} -gt 0 ]; then
    echo "run-demo: still running at the end, stopping: ${late[*]}" >&2
fi
# Reap each one for its exit status: a service that printed its count and
# then crashed (or leaked, under a sanitizer) has still failed.
statuses=()
for i in "${!pids[@]}"; do
    if alive "${pids[$i]}"; then
        kill "${pids[$i]}" 2>/dev/null || true
    fi
    status=0
    wait "${pids[$i]}" 2>/dev/null || status=$?
    statuses+=("$status")
done
stop_all

# Each service ends with "<name>: <verb> X of N ...".
count() {
    sed -nE "s/^$1: $2 ([0-9]+) of [0-9]+.*/\\1/p" "$3" 2>/dev/null |
        tail -n 1
}
created=$(count order-service created "$work/order.out" || true)
completed=$(count payment-service completed "$work/payment.out" || true)
dispatched=$(count shipping-service dispatched "$work/shipping.out" || true)
seen=$(grep -cE '(orders|payments|shipments)\.[0-9]+\.(created|completed|dispatched)' \
    "$work/tap.out" 2>/dev/null || true)

echo
echo "demo summary (mesh $mesh):"
printf '  orders created:        %s of %d\n' "${created:-?}" "$orders"
printf '  payments completed:    %s of %d\n' "${completed:-?}" "$orders"
printf '  shipments dispatched:  %s of %d\n' "${dispatched:-?}" "$orders"
printf '  events seen by tap:    %s of %d\n' "${seen:-0}" "$events"
failed=()
for i in 1 2 3; do
    [ "${statuses[$i]}" -eq 0 ] ||
        failed+=("${names[$i]} (exit status ${statuses[$i]})")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "  services that failed: ${failed[*]}"
fi
if [ ${#failed[@]} -eq 0 ] && [ "${created:-}" = "$orders" ] &&
    [ "${completed:-}" = "$orders" ] && [ "${dispatched:-}" = "$orders" ]; then
    if [ "${seen:-0}" -lt "$events" ]; then
        echo "  note: mesh-tap missed $((events - ${seen:-0})) of the" \
            "$events events"
    fi
    echo "  every order made it through: yes"
    exit 0
fi
echo "  every order made it through: NO"
exit 1
