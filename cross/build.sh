#!/usr/bin/env bash
# Builds the Debian package of tidegate for one architecture on a Debian 12
# amd64 machine: installs the (cross) toolchain and the multiarch -dev
# packages, builds with Debian's hardening flags, runs the unit tests (under
# qemu-user for ARM), packs the .deb with CPack and checks it.
#
#   cross/build.sh amd64|arm64|armhf [--revision N] [--no-tests]
#
# Output: dist/tidegate_<version>-<revision>_<arch>.deb
# Exit status: 0 built, 77 skipped because the package mirror's index for
# that architecture is inconsistent (apt state restored), other: failure.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: cross/build.sh amd64|arm64|armhf [--revision N] [--no-tests]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
arch=$1
shift
revision=1
run_tests=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --revision) revision=${2:?}; shift 2 ;;
    --no-tests) run_tests=0; shift ;;
    *) usage ;;
  esac
done
case "$arch" in
  amd64) triplet=x86_64-linux-gnu; qemu="" ;;
  arm64) triplet=aarch64-linux-gnu; qemu=qemu-aarch64 ;;
  armhf) triplet=arm-linux-gnueabihf; qemu=qemu-arm ;;
  *) usage ;;
esac
say() { printf 'cross/build.sh %s: %s\n' "$arch" "$*" >&2; }
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
host_arch=$(dpkg --print-architecture)
[[ "$host_arch" == amd64 ]] || { say "the host must be amd64 (it is $host_arch)"; exit 1; }

# Host tools: the native build's packages plus what packs and checks a .deb.
scripts/install-deps
host_tools=(dpkg-dev file lintian fakeroot)
[[ -n "$qemu" ]] && host_tools+=(qemu-user "crossbuild-essential-$arch")
$SUDO apt-get install -y -qq --no-install-recommends "${host_tools[@]}" >/dev/null

if [[ "$arch" != "$host_arch" ]]; then
  # Multiarch: the target's libraries beside the host's. A mirror caught in
  # the middle of a sync serves an index that does not match its files; then
  # the architecture is taken away again so the machine's apt keeps working.
  restore_apt() {
    $SUDO apt-get remove -y -qq "?architecture($arch)" >/dev/null 2>&1 || true
    $SUDO dpkg --remove-architecture "$arch" 2>/dev/null || true
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
  }
  mirror_problem='unexpected size|Mirror sync in progress|Hash Sum mismatch|File has unexpected|Release file .* is not valid yet|Version mismatch|but it is not installable|held broken packages|wrong architecture'
  added=0
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    $SUDO dpkg --add-architecture "$arch"
    added=1
  fi
  # Runs an apt-get step. A mirror caught mid-sync usually heals within
  # minutes, so a mirror-shaped failure is retried (TIDEGATE_MIRROR_ATTEMPTS,
  # default 4, TIDEGATE_MIRROR_PAUSE seconds apart, default 45). A failure
  # that stays says why, takes the architecture away again (if this run added
  # it) and exits: 77 when the mirror is at fault, 1 otherwise.
  apt_step() {
    local what=$1 mirror_reason=$2
    shift 2
    local log attempt=1 attempts=${TIDEGATE_MIRROR_ATTEMPTS:-4}
    log=$(mktemp)
    while :; do
      if "$@" >"$log" 2>&1; then
        rm -f "$log"
        return
      fi
      grep -Eq "$mirror_problem" "$log" || break
      [[ $attempt -ge $attempts ]] && break
      say "$what: the mirror looks inconsistent (attempt $attempt of $attempts); trying again in ${TIDEGATE_MIRROR_PAUSE:-45} s"
      grep -E "$mirror_problem" "$log" | head -3 >&2
      sleep "${TIDEGATE_MIRROR_PAUSE:-45}"
      attempt=$(( attempt + 1 ))
    done
    cat "$log" >&2
    local status=1
    if grep -Eq "$mirror_problem" "$log"; then
      say "SKIPPED after $attempt attempt(s): $mirror_reason; removing the $arch architecture again"
      status=77
    else
      say "$what failed"
    fi
    rm -f "$log"
    [[ $added -eq 1 ]] && restore_apt
    exit $status
  }
  apt_step "apt-get update" \
    "the package mirror's $arch index is inconsistent (see above; usually a mirror sync in progress)" \
    $SUDO apt-get update -qq
  libs=(libsqlite3-dev libssl-dev zlib1g-dev libboost-dev libboost-system-dev libprotobuf-dev
        libpaho-mqttpp-dev libpaho-mqtt-dev libtomlplusplus-dev libgtest-dev libgmock-dev liblua5.4-dev)
  apt_step "installing the $arch libraries" \
    "the $arch packages cannot be installed beside the host's (the mirror's $arch index does not match its amd64 one)" \
    $SUDO apt-get install -y -qq --no-install-recommends "${libs[@]/%/:$arch}" nlohmann-json3-dev
fi

# Debian's build flags for the target: -O2, stack protector, fortify,
# format security, full RELRO and BIND_NOW.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
# Without -g: the package ships a stripped binary and no -dbgsym package, so
# debug information would be compiled only to be thrown away, and it was
# 40% of the compile time (http_server.cpp: 59 s with -O2 -g, 35 s with -O2).
export DEB_CFLAGS_MAINT_STRIP=-g DEB_CXXFLAGS_MAINT_STRIP=-g
export DEB_HOST_ARCH=$arch
cppflags=$(dpkg-buildflags --get CPPFLAGS)
cflags=$(dpkg-buildflags --get CFLAGS)
cxxflags=$(dpkg-buildflags --get CXXFLAGS)
ldflags=$(dpkg-buildflags --get LDFLAGS)

build="build-deb-$arch"
toolchain=()
[[ "$arch" != amd64 ]] && toolchain=(-DCMAKE_TOOLCHAIN_FILE="$PWD/cross/toolchain-$arch.cmake")
# A unity build (eight .cpp files per compiler run, shared headers parsed
# once per batch): the amd64 package built in 175 s instead of 264 on 2
# cores. The default preset compiles file by file, so a missing #include
# still fails there.
say "configuring in $build"
started=$(date +%s)
cmake -S . -B "$build" "${toolchain[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE=-DNDEBUG -DCMAKE_CXX_FLAGS_RELEASE=-DNDEBUG \
  -DCMAKE_C_FLAGS="$cppflags $cflags" -DCMAKE_CXX_FLAGS="$cppflags $cxxflags" \
  -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
  -DTIDEGATE_WERROR=ON -DTIDEGATE_BUILD_BENCH=OFF -DTIDEGATE_BUILD_INTEGRATION_TESTS=OFF \
  -DCMAKE_UNITY_BUILD=ON \
  -DTIDEGATE_BUILD_TESTS=$([[ $run_tests -eq 1 ]] && echo ON || echo OFF) \
  -DTIDEGATE_DEB_REVISION="$revision" >/dev/null
cmake --build "$build" -j"$(nproc)"
say "built in $(( $(date +%s) - started )) s"

binary="$build/gateway/tidegate"
# (Not `tee /dev/stderr`: with stderr redirected to a file, that reopens
# the file and truncates the log written so far.)
machine=$(file "$binary")
echo "$machine" >&2
case "$arch" in
  amd64) expected="x86-64" ;;
  arm64) expected="ARM aarch64" ;;
  armhf) expected="ARM, EABI5" ;;
esac
grep -q "$expected" <<<"$machine" || { say "the binary is not built for $arch"; exit 1; }
$qemu "$binary" --version

if [[ $run_tests -eq 1 ]]; then
  started=$(date +%s)
  # ctest runs each test through CMAKE_CROSSCOMPILING_EMULATOR (qemu-user).
  ctest --test-dir "$build" -L unit -j"$(nproc)" --timeout 900 --output-on-failure
  say "unit tests passed in $(( $(date +%s) - started )) s${qemu:+ (under $qemu)}"
fi

(cd "$build" && cpack -G DEB >/dev/null)
mkdir -p dist
deb=$(ls -t "$build"/packages/tidegate_*_"$arch".deb | head -1)
cp "$deb" dist/
deb="dist/$(basename "$deb")"
say "package $deb"
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
[[ "$(dpkg-deb --field "$deb" Architecture)" == "$arch" ]] || { say "wrong Architecture field"; exit 1; }
# Lintian: errors fail the build; the remaining tags are justified in docs/packaging.md.
lintian --fail-on error --suppress-tags-from-file packaging/lintian-overrides.txt "$deb"
say "done: $deb"
