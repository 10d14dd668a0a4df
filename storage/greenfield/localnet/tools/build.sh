#!/usr/bin/env bash
# Builds the two binaries of the local Greenfield test network, gnfd (the
# chain) and gnfd-sp (the storage provider), from the Go module proxy into a
# cache folder keyed by their versions, and skips the build when they are
# already there. Prints that folder on the last line of stdout.
#
#   GATA_LOCALNET_CACHE  cache root (default ~/.cache/gata-localnet)
#   GATA_LOCALNET_SP_GO  toolchain for gnfd-sp (default go1.20.14; it does not
#                        build with newer Go)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

modver() { # modver FILE MODULE: the required version of MODULE in FILE
	awk -v m="$2" '{for (i = 1; i < NF; i++) if ($i == m) {print $(i+1); exit}}' "$1"
}
gnfd_ver=$(modver "$here/gnfd/go.mod" github.com/bnb-chain/greenfield)
sp_ver=$(modver "$here/sp/go.mod" github.com/bnb-chain/greenfield-storage-provider)
[ -n "$gnfd_ver" ] && [ -n "$sp_ver" ] || { echo "build.sh: cannot read the versions from go.mod" >&2; exit 1; }

cache=${GATA_LOCALNET_CACHE:-$HOME/.cache/gata-localnet}
out="$cache/gnfd-$gnfd_ver-sp-$sp_ver"
mkdir -p "$out"

export GONOSUMDB=github.com/bnb-chain # the checksum database lacks one of their dependencies
export GOFLAGS=-buildvcs=false
export CGO_ENABLED=1
export CGO_CFLAGS="-O -D__BLST_PORTABLE__"
ldflags='-extldflags=-Wl,-z,noexecstack'

build() { # build NAME MODULE_DIR PACKAGE [env...]
	local name=$1 dir=$2 pkg=$3; shift 3
	if [ -x "$out/$name" ]; then
		echo "build.sh: $name is cached in $out" >&2
		return
	fi
	echo "build.sh: building $name ($pkg)" >&2
	local start=$SECONDS
	(cd "$here/$dir" && env "$@" go build -ldflags="$ldflags" -o "$out/$name.tmp" "$pkg")
	mv "$out/$name.tmp" "$out/$name"
	echo "build.sh: built $name in $((SECONDS - start)) s" >&2
}

build gnfd gnfd github.com/bnb-chain/greenfield/cmd/gnfd GOTOOLCHAIN=auto
build gnfd-sp sp github.com/bnb-chain/greenfield-storage-provider/cmd/storage_provider \
	GOTOOLCHAIN="${GATA_LOCALNET_SP_GO:-go1.20.14}"

echo "$out"
