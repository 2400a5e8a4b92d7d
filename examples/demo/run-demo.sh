#!/usr/bin/env bash
# run-demo.sh - the order flow of event-driven architecture texts, on zmesh,
# with a service that goes away for a while and loses nothing.
#
#   order-service --orders.N.created-->  payment-service
#   payment-service --payments.N.completed-->  shipping-service
#   shipping-service --shipments.N.dispatched-->  (anyone)
#
# mesh-relay keeps the payments on disk (stream "payments", in a temporary
# directory). payment-service publishes each payment with a confirm from
# the relay; shipping-service takes them as the durable consumer "shipping"
# and acknowledges each one once its order is shipped. Midway, this script
# stops shipping-service (SIGTERM) while orders keep coming, then starts it
# again: it catches up from the relay with the payments it missed, then
# goes on live, shipping every order exactly once.
#
# mesh-tap shows the flow as it happens. Every process is on a mesh of its
# own (zmesh-demo-PID), so nothing else on this host can join, and
# everything stays on this host: discovery beacons go to 127.255.255.255
# and the agents bind ports the system picks. The script waits for all of
# them with a deadline, stops what is left by PID, prints a summary and
# exits non-zero unless every order was paid for, stored by the relay and
# shipped, none lost and none twice.
#
# usage: run-demo.sh [--bin DIR] [--orders N] [--pace-ms MS] [--timeout SECONDS]
#   --bin DIR   where order-service, payment-service and shipping-service
#               are (default: this script's directory, else PATH); mesh-tap
#               and mesh-relay are taken from there too, else from PATH
#   --orders N  orders to place, at least 3 (default 30)
#   --pace-ms   time between two orders (default 100)
#   --timeout   the whole run's deadline (default 30 s)
#   ZMESH_BEACON_PORT, when set, is passed on to every agent.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$here
orders=30
pace_ms=100
timeout=30

usage() {
    sed -n '/^# usage:/,/^#   ZMESH/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin=${2:?--bin needs a directory}; shift 2 ;;
    --orders) orders=${2:?--orders needs a number}; shift 2 ;;
    --pace-ms) pace_ms=${2:?--pace-ms needs a number}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
case "$orders$pace_ms$timeout" in
*[!0-9]*)
    echo "run-demo: --orders, --pace-ms and --timeout take numbers" >&2
    exit 2
    ;;
esac
# Three orders at least, so there is a before, a during and an after.
if [ "$orders" -lt 3 ] || [ "$timeout" -lt 5 ]; then
    echo "run-demo: --orders must be at least 3, --timeout at least 5" >&2
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
relay=$(find_program mesh-relay)
order_service=$(find_program order-service)
payment_service=$(find_program payment-service)
shipping_service=$(find_program shipping-service)

mesh="zmesh-demo-$$"
events=$((3 * orders))
# shipping-service is stopped once it has shipped a third of the orders,
# and started again once two thirds are paid for (and at least one since
# it stopped): the payments in between are made while it is down.
stop_after=$((orders / 3))
restart_at=$((2 * orders / 3))
work=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-demo.XXXXXX")
end=$((SECONDS + timeout))

# What we started and have not reaped yet, by PID, with a name each.
pids=()
names=()
declare -A status

# Kills whatever we started that still runs, by PID, and reaps it (and the
# tee behind mesh-tap, which ends when mesh-tap does).
stop_all() {
    local pid
    for pid in "${pids[@]}"; do
        if [ -n "$pid" ]; then
            kill "$pid" 2>/dev/null || true
        fi
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

alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

# Polls a command every 0.1 s until it succeeds; fails at the deadline.
wait_until() {
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}

# Stops the program started as slot $1 (SIGTERM, then SIGKILL after 10 s)
# and records its exit status under its name; its PID leaves the list, so
# nothing is ever sent to a PID the system may have given to another.
reap() {
    local i=$1 pid=${pids[$1]} rc=0 give_up=$((SECONDS + 10))
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    while alive "$pid" && [ $SECONDS -lt $give_up ]; do
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    status[${names[$i]}]=$rc
    pids[i]=""
}

# Starts a program in the background, its output in $work/NAME.out (its
# warnings, if any, come to the terminal); sets $slot and $pid to its
# place in the list and its PID.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.out" &
    pid=$!
    slot=${#pids[@]}
    pids+=("$pid")
    names+=("$name")
}

# Lines of a file that match a pattern (0 when there is no file yet).
lines() {
    local n
    n=$(grep -c -- "$1" "$2" 2>/dev/null) || true
    echo "${n:-0}"
}
# shellcheck disable=SC2317 # called through wait_until
shipped_by_first_run() {
    [ "$(lines '^shipping-service: shipped order' "$work/shipping-1.out")" \
        -ge "$stop_after" ] || ! alive "$shipping_pid"
}
# shellcheck disable=SC2317 # called through wait_until
paid_enough() {
    [ "$(lines '^payment-service: paid order' "$work/payment.out")" \
        -ge "$restart_at" ] || ! alive "$payment_pid"
}

# What mesh-relay logged (to a file: its start-up lines are not news).
relay_log() {
    [ -s "$work/mesh-relay.err" ] || return 0
    echo "  mesh-relay logged:"
    sed 's/^/    /' "$work/mesh-relay.err"
}

echo "run-demo: mesh $mesh, $orders orders, deadline ${timeout}s"

# The relay first: it must store payments from the first one on, and
# shipping-service's durable consumer lives in it. It prints one line
# once it has joined the mesh.
start mesh-relay "$relay" --mesh "$mesh" --dir "$work/relay" \
    --stream 'payments=payments.>' 2>"$work/mesh-relay.err"
relay_slot=$slot relay_pid=$pid
# shellcheck disable=SC2317 # called through wait_until
relay_ready() {
    grep -q '^mesh-relay: mesh' "$work/mesh-relay.out" || ! alive "$relay_pid"
}
if ! wait_until relay_ready || ! alive "$relay_pid"; then
    echo "run-demo: mesh-relay did not start" >&2
    relay_log >&2
    exit 1
fi
echo "run-demo: mesh-relay stores payments.> in $work/relay"

echo "run-demo: mesh-tap shows every event as it passes:"
# The services' own deadline is a little shorter than ours, so they end by
# themselves and report; ours is the backstop.
service_ms=$(((timeout - 3) * 1000))

# Each waiting publisher counts mesh-tap among its subscribers, so the tap
# sees the whole flow from the first order on.
"$tap" --mesh "$mesh" --count "$events" --timeout "$timeout" \
    'orders.>' 'payments.>' 'shipments.>' > >(tee "$work/tap.out") &
pids+=($!) names+=(mesh-tap)
tap_pid=$!
# shipping-service keeps the orders it shipped in shipped.txt, across runs.
start shipping-1 "$shipping_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$service_ms" --min-subscribers 1 \
    --state "$work/shipped.txt"
shipping_slot=$slot shipping_pid=$pid
# Payments go to shipping-service, mesh-relay and mesh-tap.
start payment "$payment_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$service_ms" --min-subscribers 3
payment_pid=$pid
start order "$order_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$service_ms" --min-subscribers 2 --pace-ms "$pace_ms"
order_pid=$pid

# Take shipping-service down midway. SIGTERM lets it finish the payment in
# hand and give its acknowledgements to the relay before it exits.
wait_until shipped_by_first_run || true
echo "run-demo: stopping shipping-service (PID $shipping_pid)"
reap "$shipping_slot"
echo "run-demo: shipping-service stopped after" \
    "$(lines '^shipping-service: shipped order' "$work/shipping-1.out")" \
    "shipments; orders keep coming"
paid_at_stop=$(lines '^payment-service: paid order' "$work/payment.out")
if [ "$restart_at" -le "$paid_at_stop" ]; then
    restart_at=$((paid_at_stop < orders ? paid_at_stop + 1 : orders))
fi

# Orders keep flowing: payments go to the relay (and the tap), not to
# shipping-service. Once enough of them are made, start it again: same
# consumer name, same record of what it shipped.
wait_until paid_enough || true
paid_at_restart=$(lines '^payment-service: paid order' "$work/payment.out")
echo "run-demo: $((paid_at_restart - paid_at_stop)) payments made while" \
    "shipping-service was down; starting it again"
left_ms=$(((end - SECONDS - 3) * 1000))
[ "$left_ms" -ge 1000 ] || left_ms=1000
start shipping-2 "$shipping_service" --mesh "$mesh" --orders "$orders" \
    --timeout-ms "$left_ms" --min-subscribers 1 --state "$work/shipped.txt"
shipping2_pid=$pid

# Wait for the services, then give the tap a moment to print the last
# shipments (it ends by itself after --count events).
# shellcheck disable=SC2317 # called through wait_until
services_done() {
    ! alive "$order_pid" "$payment_pid" "$shipping2_pid"
}
wait_until services_done || true
tap_end=$((SECONDS + 3))
while alive "$tap_pid" && [ $SECONDS -lt $tap_end ]; do
    sleep 0.1
done
late=()
for i in "${!pids[@]}"; do
    [ "$i" -ne "$relay_slot" ] && [ -n "${pids[$i]}" ] &&
        alive "${pids[$i]}" && late+=("${names[$i]}")
done
if [ ${#late[@]} -gt 0 ]; then
    echo "run-demo: still running at the end, stopping: ${late[*]}" >&2
fi
# Reap each one for its exit status: a service that printed its count and
# then crashed (or leaked, under a sanitizer) has still failed. The relay
# last, once nobody needs it; SIGTERM is how it is meant to stop.
for i in "${!pids[@]}"; do
    [ "$i" -eq "$relay_slot" ] || reap "$i"
done
reap "$relay_slot"
stop_all

# Each service's last lines: "<name>: <verb> X of N ...".
count() {
    sed -nE "s/^$1: $2 ([0-9]+) of [0-9]+.*/\\1/p" "$3" 2>/dev/null |
        tail -n 1
}
# shipping-service's run totals: "this run shipped X, Y caught up ..." and
# "duplicates D, lost L".
run_field() {
    sed -nE "s/^shipping-service: $1/\\1/p" "$work/$2.out" 2>/dev/null |
        tail -n 1
}
created=$(count order-service created "$work/order.out" || true)
completed=$(count payment-service completed "$work/payment.out" || true)
confirmed=$(count payment-service confirmed "$work/payment.out" || true)
dispatched=$(count shipping-service dispatched "$work/shipping-2.out" || true)
shipped_1=$(run_field 'this run shipped ([0-9]+),.*' shipping-1 || true)
shipped_2=$(run_field 'this run shipped ([0-9]+),.*' shipping-2 || true)
caught_up=$(run_field 'this run shipped [0-9]+, ([0-9]+) caught up.*' \
    shipping-2 || true)
duplicates=0 lost=0
for run in shipping-1 shipping-2; do
    d=$(run_field 'duplicates ([0-9]+),.*' "$run" || true)
    l=$(run_field 'duplicates [0-9]+, lost ([0-9]+)$' "$run" || true)
    duplicates=$((duplicates + ${d:-0})) lost=$((lost + ${l:-0}))
done
# The record itself must name each order once.
recorded_twice=$(sort -n "$work/shipped.txt" 2>/dev/null | uniq -d | wc -l)
duplicates=$((duplicates + recorded_twice))
# Paid for but never shipped: lost too.
if [ -n "${completed:-}" ] && [ -n "${dispatched:-}" ] &&
    [ "$completed" -gt "$dispatched" ]; then
    lost=$((lost + completed - dispatched))
fi
seen=$(grep -cE '(orders|payments|shipments)\.[0-9]+\.(created|completed|dispatched)' \
    "$work/tap.out" 2>/dev/null || true)

echo
echo "demo summary (mesh $mesh):"
printf '  orders placed:                      %s of %d\n' "${created:-?}" "$orders"
printf '  orders paid:                        %s of %d\n' "${completed:-?}" "$orders"
printf '  payments the relay confirmed:       %s of %d\n' "${confirmed:-?}" "$orders"
printf '  orders shipped:                     %s of %d\n' "${dispatched:-?}" "$orders"
printf '    before shipping-service stopped:  %s\n' "${shipped_1:-?}"
printf '    after it came back:               %s\n' "${shipped_2:-?}"
printf '  payments made while it was down:    %d\n' \
    "$((paid_at_restart - paid_at_stop))"
printf '  caught up from the relay:           %s\n' "${caught_up:-?}"
printf '  duplicates seen by shipping:        %d\n' "$duplicates"
printf '  lost:                               %d\n' "$lost"
printf '  events seen by mesh-tap:            %s of %d\n' "${seen:-0}" "$events"
failed=()
for name in order payment shipping-1 shipping-2 mesh-relay; do
    [ "${status[$name]:-1}" -eq 0 ] ||
        failed+=("$name (exit status ${status[$name]:-?})")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "  processes that failed: ${failed[*]}"
fi
if [ ${#failed[@]} -eq 0 ] && [ "$duplicates" -eq 0 ] && [ "$lost" -eq 0 ] &&
    [ "${created:-}" = "$orders" ] && [ "${completed:-}" = "$orders" ] &&
    [ "${confirmed:-}" = "$orders" ] && [ "${dispatched:-}" = "$orders" ]; then
    if [ "${caught_up:-0}" -eq 0 ]; then
        echo "  note: shipping-service missed nothing while it was down," \
            "so there was nothing to catch up (orders came too fast?" \
            "try a larger --pace-ms)"
    fi
    if [ "${seen:-0}" -lt "$events" ]; then
        echo "  note: mesh-tap missed $((events - ${seen:-0})) of the" \
            "$events events"
    fi
    echo "  every order paid, stored and shipped once, nothing lost: yes"
    exit 0
fi
echo "  every order paid, stored and shipped once, nothing lost: NO"
relay_log
exit 1
