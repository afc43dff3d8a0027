#!/bin/bash
# The opencryptoki soft token for the tests in this folder.
#
#   fixture.sh start DIR [LABEL]   start pkcsslotd, (re)initialise the soft token
#   fixture.sh stop DIR            stop the pkcsslotd that start started
#
# start prints key=value lines (slot, label, pin_file, module) and keeps its
# state in DIR: the daemon's pid (pkcsslotd.pid), its log and the user PIN
# (user.pin, mode 0600). The soft token is one per machine
# (/var/lib/opencryptoki/swtok), so every start wipes it with C_InitToken:
# never point this at a machine whose soft token holds keys someone needs.
# Both commands may be run again after a failed or interrupted run.
#
# Written for Debian 12's opencryptoki 3.8 and run as root: the token's
# files and lock directories belong to root and the group pkcs11.

set -euo pipefail

readonly DEFAULT_LABEL=otpbox-ock
# C_InitToken needs the SO PIN; a fresh opencryptoki token's is 87654321.
# The fixture never changes it, so that the next run can initialise again.
readonly SO_PIN=${OTPBOX_OCK_SO_PIN:-87654321}
readonly MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
readonly SYSTEM_PID_FILE=/run/pkcsslotd.pid

fail() {
    echo "fixture.sh: $*" >&2
    exit 1
}

# What Debian's tmpfiles.d/opencryptoki.conf (or its init script) makes at
# boot; neither ran where no systemd or init started the system. Only the
# soft token's own directories are needed.
make_directories() {
    getent group pkcs11 >/dev/null ||
        fail "no group pkcs11: install the Debian package opencryptoki, whose postinst makes it"
    local dir
    for dir in /var/lock/opencryptoki /var/lock/opencryptoki/swtok /var/lib/opencryptoki \
        /var/lib/opencryptoki/swtok /var/lib/opencryptoki/swtok/TOK_OBJ; do
        install -d -m 0770 -o root -g pkcs11 "$dir"
    done
}

# True when pid names a process that has not ended (a zombie has ended).
is_alive() {
    local pid=$1
    [[ -n "$pid" && -e "/proc/$pid" ]] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# True when pid names a running pkcsslotd: a stale pid may name another
# program by now.
is_slotd() {
    local pid=$1
    is_alive "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == pkcsslotd ]]
}

# Starts pkcsslotd unless the one of an earlier start in DIR still runs.
# A pkcsslotd that someone else started is used and left alone: stop never
# touches it, since its pid is not written to DIR.
start_daemon() {
    local dir=$1 pid=""
    [[ -f "$dir/pkcsslotd.pid" ]] && pid=$(cat "$dir/pkcsslotd.pid")
    if is_slotd "$pid"; then
        return
    fi
    rm -f "$dir/pkcsslotd.pid"
    [[ -f "$SYSTEM_PID_FILE" ]] && pid=$(cat "$SYSTEM_PID_FILE")
    if is_slotd "$pid"; then
        echo "fixture.sh: using the pkcsslotd already running (pid $pid)" >&2
        return
    fi

    # In the foreground (-f), so that $! is the daemon; setsid and the
    # redirections detach it from the caller's session and pipes.
    setsid pkcsslotd -f >"$dir/pkcsslotd.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pkcsslotd.pid"
    for _ in $(seq 100); do
        # Alive, not is_slotd: until setsid has exec'd, the child is a shell.
        if ! is_alive "$pid"; then
            rm -f "$dir/pkcsslotd.pid"
            fail "pkcsslotd exited at start: $(cat "$dir/pkcsslotd.log")"
        fi
        # Ready once a client gets through C_Initialize: the socket alone
        # may be a stale one of a daemon that was killed.
        if pkcsconf -s >/dev/null 2>&1; then
            is_slotd "$pid" || fail "pid $pid is not pkcsslotd, yet a pkcsslotd answers"
            return
        fi
        sleep 0.1
    done
    fail "pkcsslotd (pid $pid) did not answer in 10 s: $(cat "$dir/pkcsslotd.log")"
}

# "N MIN MAX": the soft token's slot and its PIN lengths
# (ulMinPinLen, ulMaxPinLen of CK_TOKEN_INFO) as pkcsconf -t shows them.
soft_token_info() {
    pkcsconf -t | awk '
        /^Token #[0-9]+ Info:/ { slot = $2; sub("#", "", slot) }
        /Model: IBM SoftTok/ { soft = slot }
        /PIN Length:/ && slot == soft && !done {
            split($3, len, "-"); print soft, len[1], len[2]; done = 1
        }'
}

# Digits of the longest length the token takes, at most 8.
make_user_pin() {
    local min=$1 max=$2 length
    length=$((max < 8 ? max : 8))
    ((length >= min)) || fail "the soft token wants PINs of $min-$max characters"
    shuf -r -n "$length" -i 0-9 | tr -d '\n'
}

# The PINs go through pkcsconf's prompts on its standard input, never on
# its command line, where ps would show them.
initialise_token() {
    local slot=$1 label=$2 user_pin=$3 log=$4 status=0
    printf '%s\n%s\n' "$SO_PIN" "$label" | pkcsconf -I -c "$slot" >>"$log" 2>&1 || status=$?
    # pkcsconf exits with the CK_RV: 0xa0 (160) is CKR_PIN_INCORRECT.
    ((status == 0)) || fail "pkcsconf -I failed ($status; 160 is a wrong SO PIN: set" \
        "OTPBOX_OCK_SO_PIN or reset /var/lib/opencryptoki/swtok); see $log"
    printf '%s\n%s\n%s\n' "$SO_PIN" "$user_pin" "$user_pin" |
        pkcsconf -u -c "$slot" >>"$log" 2>&1 || fail "pkcsconf -u failed; see $log"
}

start() {
    local dir=$1 label=${2:-$DEFAULT_LABEL}
    [[ "$(id -u)" == 0 ]] || fail "must run as root (pkcsslotd and the token's files)"
    if ! command -v pkcsslotd >/dev/null || ! command -v pkcsconf >/dev/null; then
        fail "pkcsslotd or pkcsconf missing: install the Debian package opencryptoki"
    fi
    [[ -e "$MODULE" ]] || fail "no module $MODULE: install libopencryptoki0"
    mkdir -p "$dir"
    make_directories
    start_daemon "$dir"

    local info slot min max
    info=$(soft_token_info)
    [[ -n "$info" ]] || fail "pkcsslotd serves no soft token (IBM SoftTok); see pkcsconf -t"
    read -r slot min max <<<"$info"
    ((${#SO_PIN} >= min && ${#SO_PIN} <= max)) || fail "the SO PIN's length is outside $min-$max"

    local user_pin
    user_pin=$(make_user_pin "$min" "$max")
    : >"$dir/pkcsconf.log"
    initialise_token "$slot" "$label" "$user_pin" "$dir/pkcsconf.log"
    (umask 077 && printf '%s\n' "$user_pin" >"$dir/user.pin")
    local shown
    shown=$(pkcsconf -t -c "$slot")
    grep -q "Label: $label *\$" <<<"$shown" ||
        fail "the token in slot $slot does not carry the label $label after pkcsconf -I"

    echo "slot=$slot"
    echo "label=$label"
    echo "pin_file=$dir/user.pin"
    echo "module=$MODULE"
}

# SIGTERM, then SIGKILL after 10 s. The daemon is not this shell's child,
# so its end is seen in /proc.
stop() {
    local dir=$1 pid=""
    [[ -f "$dir/pkcsslotd.pid" ]] && pid=$(cat "$dir/pkcsslotd.pid")
    if ! is_slotd "$pid"; then
        rm -f "$dir/pkcsslotd.pid"
        return
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do
        is_slotd "$pid" || break
        sleep 0.1
    done
    if is_slotd "$pid"; then
        kill -KILL "$pid"
    fi
    rm -f "$dir/pkcsslotd.pid"
}

case "${1:-}" in
    start) [[ $# -ge 2 ]] || fail "usage: fixture.sh start DIR [LABEL]"; start "$2" "${3:-}" ;;
    stop) [[ $# -eq 2 ]] || fail "usage: fixture.sh stop DIR"; stop "$2" ;;
    *) fail "usage: fixture.sh start DIR [LABEL] | stop DIR" ;;
esac
