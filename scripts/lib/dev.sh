# shellcheck shell=bash
# Shared by the scripts/dev-* service scripts; sourced, it only defines
# constants and functions. The sourcing script sets
#
#   SERVICES        service names, in start order; each implements
#                   <svc>_up, <svc>_down, <svc>_status and <svc>_env
#   DEV_LOCK_NAME   lock file in DEV_DIR that serialises up and down
#
# and ends with `dev_main "$@"`. The lock is held on fd 9: close it (9>&-)
# in anything long-lived a service starts, or that process holds the lock.

# The sourcing script: its name prefixes log lines, its header is the usage.
DEV_SCRIPT=${BASH_SOURCE[1]:-$0}
DEV_NAME=${DEV_SCRIPT##*/}
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV_DIR=${KAIZEN_DEV_DIR:-$REPO_DIR/.dev}

log() { printf '%s: %s\n' "$DEV_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- helpers

as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root to run: $*"
	fi
}

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_busy() {
	local name
	for name in apt-get apt dpkg; do
		pgrep -x "$name" >/dev/null && return 0
	done
	return 1
}

# ensure_packages PKG...: apt-get install whatever is missing. Waits for an
# apt/dpkg run already in progress (another dev script's, or one started in
# the background) rather than fighting it for the lock.
ensure_packages() {
	local missing=() p waited=0
	for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
	((${#missing[@]})) || return 0

	while apt_busy; do
		((waited % 30 == 0)) && log "waiting for a running apt-get/dpkg to finish (${waited}s)"
		((waited >= 1800)) && die "apt-get/dpkg still running after ${waited}s"
		sleep 2
		waited=$((waited + 2))
	done
	missing=()
	for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
	((${#missing[@]})) || return 0

	log "installing ${missing[*]}"
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q
		-o DPkg::Lock::Timeout=600 install --no-install-recommends)
	if ! as_root "${apt[@]}" "${missing[@]}" >&2; then
		log "install failed; running apt-get update and retrying"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
		as_root "${apt[@]}" "${missing[@]}" >&2
	fi
}

http_ok() {
	curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# pid_alive PIDFILE PATTERN: the PID in PIDFILE is running and its command
# line contains PATTERN (guards against a reused PID).
pid_alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid=$(<"$1")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$2"
}

# stop_pid PIDFILE PATTERN NAME: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local pidfile=$1 pattern=$2 name=$3 pid i
	if ! pid_alive "$pidfile" "$pattern"; then
		rm -f "$pidfile"
		log "$name: not running"
		return 0
	fi
	pid=$(<"$pidfile")
	log "$name: stopping (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pid_alive "$pidfile" "$pattern" || break
		sleep 0.1
	done
	if pid_alive "$pidfile" "$pattern"; then
		log "$name: still running after 10s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# random_secret: 32 alphanumeric characters from /dev/urandom.
random_secret() {
	head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 32
}

# ---------------------------------------------------------------- main

# The sourcing script's header comment, up to `set -euo`.
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$DEV_SCRIPT" >&2
	exit 2
}

# Serialise up/down so two concurrent `up`s cannot both start a server.
take_lock() {
	mkdir -p "$DEV_DIR"
	exec 9>"$DEV_DIR/$DEV_LOCK_NAME"
	flock 9
}

# dev_main COMMAND: run COMMAND over SERVICES; down in reverse order.
dev_main() {
	(($# == 1)) || usage
	local svc rc=0 i
	case $1 in
	up)
		take_lock
		for svc in "${SERVICES[@]}"; do "${svc}_up"; done
		;;
	down)
		take_lock
		for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do "${SERVICES[i]}_down"; done
		;;
	status)
		for svc in "${SERVICES[@]}"; do "${svc}_status" || rc=1; done
		return "$rc"
		;;
	env)
		for svc in "${SERVICES[@]}"; do "${svc}_env"; done
		;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}
