#!/usr/bin/env bash
# bench.sh — the Go CPU backend side by side with the PyTorch reference (clip_ref.py) on a
# full-size ViT-B/16 with random weights, batch 32, same thread count, in one run.
#
#   dva/cpu/bench.sh [MODEL_DIR]        (default $GATA_BENCH_MODEL or /tmp/gata-vitb16)
#   THREADS=2 RUNS=3 dva/cpu/bench.sh
#
# The model folder is written once with `clip_ref.py --write-full` and reused. Both sides
# report wall-clock throughput and, because a shared machine makes the wall clock lie, the
# throughput their CPU time would give with every thread on its own core ("cpu-est").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${GATA_SHARED_DIR:-$(cd "$root/.." && pwd)/shared}
ref=$shared/ref/clip_ref.py
model=${1:-${GATA_BENCH_MODEL:-/tmp/gata-vitb16}}
threads=${THREADS:-2}
runs=${RUNS:-3}
pyruns=${PYRUNS:-5}
py=${PYTHON:-/usr/bin/python3}

[ -f "$ref" ] || { echo "bench.sh: $ref not found (set GATA_SHARED_DIR)" >&2; exit 1; }
if [ ! -f "$model/open_clip_model.safetensors" ]; then
	echo "== writing the full-size ViT-B/16 to $model (once)"
	"$py" "$ref" --write-full "$model"
fi

# OpenBLAS picks its kernels from the CPU model; where a virtual machine hides it, OpenBLAS
# 0.3.21 falls back to its generic "Prescott" kernels, several times slower. Unless told
# otherwise, name the kernels the CPU's flags allow, so torch runs at its best.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
	if grep -qw avx512f /proc/cpuinfo; then
		export OPENBLAS_CORETYPE=SkylakeX
	elif grep -qw avx2 /proc/cpuinfo; then
		export OPENBLAS_CORETYPE=Haswell
	fi
fi
echo "== PyTorch: clip_ref.py --bench --threads $threads --batch 32 --runs $pyruns (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto})"
# Its last part (preprocessing speed) needs scikit-image's sample photos; the tower numbers
# come before it, so a failure there is reported and ignored.
py_out=$("$py" "$ref" --bench --threads "$threads" --batch 32 --runs "$pyruns" 2>&1) ||
	echo "(clip_ref.py --bench exited with an error; its last lines follow)"
echo "$py_out" | tail -n 40

echo "== Go: BenchmarkViTB16 (dva/cpu), $threads threads, $runs runs each"
go_out=$(cd "$root" && GATA_BENCH_MODEL="$model" GATA_BENCH_THREADS="$threads" \
	go test -run '^$' -bench 'ViTB16' -benchtime "${runs}x" -timeout 60m ./dva/cpu 2>&1)
echo "$go_out"

# pyval LABEL FIELD: from the PyTorch line starting with LABEL, the items/s (FIELD=wall) or
# the "if not shared" estimate (FIELD=cpu).
pyval() {
	local line
	line=$(grep -m1 "^$1" <<<"$py_out" || true)
	case $2 in
	wall) sed -n 's/.*-> \([0-9.]*\) items\/s.*/\1/p' <<<"$line" ;;
	cpu) sed -n 's/.*if not shared: ~\([0-9.]*\) items\/s.*/\1/p' <<<"$line" ;;
	esac
}
# goval BENCH UNIT: the value reported before UNIT on the Go benchmark line BENCH.
goval() {
	grep -m1 "^BenchmarkViTB16/$1" <<<"$go_out" |
		awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }

echo
echo "== summary (batch 32, $threads threads; ratio = Go / PyTorch, higher is better for Go)"
printf '%-30s %10s %10s %7s   %10s %10s %7s\n' "" "torch" "go" "ratio" "torch-cpu" "go-cpu" "ratio"
row() { # NAME PYLABEL GOBENCH UNIT
	local pw pc gw gc
	pw=$(pyval "$2" wall) pc=$(pyval "$2" cpu) gw=$(goval "$3" "$4") gc=$(goval "$3" "$4-cpu-est")
	printf '%-30s %10s %10s %7s   %10s %10s %7s\n' "$1" "$pw" "$gw" "$(ratio "$gw" "$pw")" "$pc" "$gc" "$(ratio "$gc" "$pc")"
}
row "images/s (ViT-B/16 224px)" "image tower" "images_batch32" "images/s"
row "texts/s (14 tokens)" "text tower truncated" "texts_14tokens_batch32" "texts/s"
row "texts/s (77 tokens)" "text tower (all 77" "texts_77tokens_batch32" "texts/s"
if grep -q 'loaded:.*libblas\.so' <<<"$py_out" && ! grep -qiE 'loaded:.*(openblas|mkl|blis)' <<<"$py_out"; then
	echo "note: torch runs its matrix products on the reference (netlib) BLAS here, which is"
	echo "      single-threaded and unoptimised; install an optimised BLAS (e.g. Debian"
	echo "      libopenblas0-pthread) for a fair comparison."
fi
echo "go peak RSS: $(goval images_batch32 peak-RSS-MiB) MiB (model load + batch 32)"
