# Helpers for setup steps that install Debian/Ubuntu packages. Source it:
#   . "$SPACES_ROOT/scripts/lib/apt.sh"; apt_install pkg...
# Refreshes the package lists only when an install cannot find a package, or when
# the lists are missing altogether.

as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        return 1
    fi
}

apt_get() {
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=900 -o Acquire::Retries=3 "$@"
}

# the packages of "$@" that are not installed
apt_missing() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || echo "$pkg"
    done
}

apt_install() {
    if ! command -v apt-get >/dev/null; then
        echo "apt-get not found: install $* with your system's package manager" >&2
        return 1
    fi
    if [[ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ]]; then
        apt_get update -qq
    fi
    if ! apt_get install -y -qq --no-install-recommends "$@"; then
        apt_get update -qq
        apt_get install -y -qq --no-install-recommends "$@"
    fi
}
