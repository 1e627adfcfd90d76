#!/usr/bin/env bash
# Install, update or uninstall the Amp Guard bridge on a Debian-based SBC
# (Raspberry Pi OS class, system Python 3.11+). Run once as root from the project folder:
#
#   sudo deploy/install.sh install [--gpio]   # user, venv, config, systemd unit; starts it
#   sudo deploy/install.sh update  [--gpio]   # new code; settings and energy counters kept
#   sudo deploy/install.sh uninstall [--purge]
#
# Settings, energy counters, identity and pairings live in /var/lib/amp-guard and are
# never touched by install or update (update also saves a copy in
# /var/backups/amp-guard first); uninstall keeps them unless --purge.
set -euo pipefail

NAME="amp-guard"
SERVICE="amp-guard-bridge.service"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(dirname "$SCRIPT_DIR")"
ROOT=""
GPIO=0
PURGE=0
VENV=1
KEEP_BACKUPS=5
CONFIG_WRITTEN=0

usage() {
    cat <<EOF
Usage: $0 install|update|uninstall [options]

  install      create the $NAME user, the Python environment in /opt/$NAME, the
               config /etc/$NAME/amp-guard.toml (an existing one is kept), the state
               folder /var/lib/$NAME and the $SERVICE unit; enable and start it
  update       save a copy of the state, install the new code and unit, restart;
               settings, energy counters and the config file are kept
  uninstall    stop and remove the service and the code; state and config are kept

Options:
  --gpio         also install the gpiod bindings (status lights and reset button)
  --purge        uninstall: also delete the state, the config, the backups and the user
  --source DIR   project folder to install from (default: $SOURCE)
  --root DIR     stage everything under DIR instead of / without users or systemctl
                 (packaging and tests)
  --no-venv      skip the Python environment (with --root)
  -h, --help     this help
EOF
}

log() { printf '%s: %s\n' "$NAME" "$*"; }
die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }

ACTION="${1:-}"
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
    case "$1" in
        --gpio) GPIO=1 ;;
        --purge) PURGE=1 ;;
        --no-venv) VENV=0 ;;
        --source) [ $# -ge 2 ] || die "--source needs a folder"; SOURCE="$2"; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT="$(realpath -m "$2")"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
    shift
done

OPT_DIR="$ROOT/opt/$NAME"
VENV_DIR="$OPT_DIR/venv"
CONFIG_DIR="$ROOT/etc/$NAME"
CONFIG_FILE="$CONFIG_DIR/amp-guard.toml"
STATE_DIR="$ROOT/var/lib/$NAME"
BACKUP_DIR="$ROOT/var/backups/$NAME"
UNIT_FILE="$ROOT/etc/systemd/system/$SERVICE"

# With --root nothing outside it is touched: no users, no systemd, no ownership.
system() { [ -z "$ROOT" ]; }

systemctl_quiet() {
    if system && command -v systemctl >/dev/null; then
        systemctl "$@" || true
    fi
}

check_python() {
    command -v python3 >/dev/null || die "python3 is missing: apt install python3 python3-venv"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is needed, found $(python3 --version 2>&1)"
    python3 -c 'import venv, ensurepip' 2>/dev/null \
        || die "the venv module is missing: apt install python3-venv"
}

ensure_user() {
    system || return 0
    if ! id -u "$NAME" >/dev/null 2>&1; then
        log "creating system user $NAME"
        useradd --system --user-group --home-dir "/var/lib/$NAME" --no-create-home \
            --shell /usr/sbin/nologin --comment "Amp Guard bridge" "$NAME"
    fi
    # GPIO lines and serial adapters; groups that do not exist here are skipped.
    local group
    for group in gpio dialout; do
        if getent group "$group" >/dev/null; then
            usermod -a -G "$group" "$NAME"
        fi
    done
}

install_code() {
    if [ "$VENV" -eq 0 ]; then
        log "skipping the Python environment (--no-venv)"
        return 0
    fi
    [ -f "$SOURCE/pyproject.toml" ] || die "$SOURCE is not the Amp Guard project folder"
    check_python
    mkdir -p "$OPT_DIR"
    if [ ! -x "$VENV_DIR/bin/python" ]; then
        log "creating the Python environment in $VENV_DIR"
        python3 -m venv "$VENV_DIR"
    fi
    # The locked versions, the ones the tests ran on; then the bridge itself without
    # letting pip pick other versions of anything.
    local lock="$SOURCE/requirements/bridge.txt"
    [ -f "$lock" ] || die "$lock is missing: the install needs the project's lock file"
    log "installing the locked packages from requirements/bridge.txt"
    "$VENV_DIR/bin/pip" install --quiet --require-virtualenv -r "$lock"
    if [ "$GPIO" -eq 1 ]; then
        log "installing the gpiod bindings from requirements/gpio.txt"
        "$VENV_DIR/bin/pip" install --quiet --require-virtualenv -r "$SOURCE/requirements/gpio.txt"
    fi
    log "installing the bridge from $SOURCE"
    "$VENV_DIR/bin/pip" install --quiet --require-virtualenv --no-deps --force-reinstall "$SOURCE"
    "$VENV_DIR/bin/pip" check >/dev/null || die "the installed packages do not fit together: $("$VENV_DIR/bin/pip" check)"
}

install_config() {
    mkdir -p "$CONFIG_DIR"
    if [ ! -f "$CONFIG_FILE" ]; then
        install -m 0644 "$SCRIPT_DIR/amp-guard.toml" "$CONFIG_FILE"
        CONFIG_WRITTEN=1
        log "wrote $CONFIG_FILE: review [source] and [meter] for your meter"
    elif ! cmp -s "$SCRIPT_DIR/amp-guard.toml" "$CONFIG_FILE"; then
        # The installer's copy may document new options; the user's file stays in use.
        install -m 0644 "$SCRIPT_DIR/amp-guard.toml" "$CONFIG_FILE.dist"
        log "kept $CONFIG_FILE; the new example is $CONFIG_FILE.dist"
    fi
}

install_network() {
    # Wi-Fi and the setup access point go through NetworkManager where it runs.
    command -v nmcli >/dev/null || return 0
    mkdir -p "$ROOT/etc/polkit-1/rules.d"
    install -m 0644 "$SCRIPT_DIR/50-amp-guard.rules" "$ROOT/etc/polkit-1/rules.d/50-amp-guard.rules"
    # The backend is the config's [network] backend. A config just written from the
    # example gets "nmcli"; one without a [network] section gets the section; an existing
    # [network] section is the user's choice and stays.
    if [ "$CONFIG_WRITTEN" -eq 1 ]; then
        sed -i '/^\[network\]$/,/^\[/ s/^backend = .*$/backend = "nmcli"/' "$CONFIG_FILE"
    elif ! grep -q '^\[network\]' "$CONFIG_FILE"; then
        printf '\n[network]\n# Added by install.sh: NetworkManager runs here.\nbackend = "nmcli"\n' \
            >>"$CONFIG_FILE"
    else
        return 0
    fi
    log "set [network] backend = \"nmcli\" in $CONFIG_FILE (NetworkManager runs here)"
}

install_state_dir() {
    mkdir -p "$STATE_DIR"
    chmod 0700 "$STATE_DIR"
    if system; then
        chown -R "$NAME:$NAME" "$STATE_DIR"
    fi
}

install_unit() {
    mkdir -p "$(dirname "$UNIT_FILE")"
    install -m 0644 "$SCRIPT_DIR/$SERVICE" "$UNIT_FILE"
    systemctl_quiet daemon-reload
}

backup_state() {
    [ -d "$STATE_DIR" ] || return 0
    [ -n "$(ls -A "$STATE_DIR")" ] || return 0
    mkdir -p "$BACKUP_DIR"
    chmod 0700 "$BACKUP_DIR"
    local archive
    archive="$BACKUP_DIR/state-$(date -u +%Y%m%dT%H%M%SZ).tar.gz"
    tar -czf "$archive" -C "$(dirname "$STATE_DIR")" "$(basename "$STATE_DIR")"
    chmod 0600 "$archive"
    log "saved the state to $archive"
    # Keep the newest few copies only.
    local old
    # shellcheck disable=SC2012  # names are ours: state-<UTC time>.tar.gz
    ls -1t "$BACKUP_DIR"/state-*.tar.gz | tail -n +$((KEEP_BACKUPS + 1)) | while read -r old; do
        rm -f -- "$old"
    done
}

require_root() {
    if system && [ "$(id -u)" -ne 0 ]; then
        die "run as root: sudo $0 $ACTION"
    fi
}

do_install() {
    require_root
    ensure_user
    install_code
    install_config
    install_network
    install_state_dir
    install_unit
    if system; then
        systemctl_quiet enable --now "$SERVICE"
        log "installed; logs: journalctl -u ${SERVICE%.service} -f"
    else
        # Staged for packaging: nothing runs, so there is no journal to point at.
        log "staged under $ROOT (no user, no service started)"
    fi
}

do_update() {
    require_root
    [ -f "$UNIT_FILE" ] || die "not installed yet: run $0 install"
    systemctl_quiet stop "$SERVICE"
    backup_state
    ensure_user
    install_code
    install_config
    install_network
    install_state_dir
    install_unit
    systemctl_quiet start "$SERVICE"
    if system; then
        log "updated; settings and energy counters in $STATE_DIR kept"
    else
        log "staged update under $ROOT; settings and energy counters in $STATE_DIR kept"
    fi
}

do_uninstall() {
    require_root
    systemctl_quiet disable --now "$SERVICE"
    rm -f "$UNIT_FILE" "$ROOT/etc/polkit-1/rules.d/50-amp-guard.rules"
    systemctl_quiet daemon-reload
    rm -rf "$OPT_DIR"
    if [ "$PURGE" -eq 1 ]; then
        rm -rf "$STATE_DIR" "$CONFIG_DIR" "$BACKUP_DIR"
        if system && id -u "$NAME" >/dev/null 2>&1; then
            userdel "$NAME" || true
        fi
        log "removed, with its state, config and backups"
    else
        log "removed; state kept in $STATE_DIR and config in $CONFIG_DIR (--purge deletes them)"
    fi
}

case "$ACTION" in
    install) do_install ;;
    update) do_update ;;
    uninstall) do_uninstall ;;
    -h|--help) usage ;;
    *) usage >&2; exit 2 ;;
esac
