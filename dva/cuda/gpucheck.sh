#!/bin/sh
# gpucheck.sh: the checks of the CUDA backend that need an NVIDIA GPU, in two steps.
#
#   dva/cuda/gpucheck.sh build [DIR]   here (Go needed, no GPU): builds the test binary and
#                                      copies what it reads into DIR (default .gpucheck at
#                                      the repository root, ignored by git)
#   dva/cuda/gpucheck.sh run [DIR]     on the GPU machine (no Go needed): the conformance
#                                      suite and the kernel tests on the GPU, the same under
#                                      compute-sanitizer, a full-size ViT-B/16 against the
#                                      CPU, and the benchmark beside PyTorch fp16
#
# The GPU tests are ordinary tests that skip without a GPU, so no build tag is needed;
# GATA_REQUIRE_GPU=1 turns the skip into a failure on the GPU machine. The run step writes
# its logs to $OUT (or DIR/out) and a summary to summary.txt there. Steps: RUN_SUITE,
# RUN_SANITIZER, RUN_FULL, RUN_BENCH (set one to 0 to leave it out); BATCH (256).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
step=${1:-build}
dir=${2:-$root/.gpucheck}

build() {
	shared=${GATA_SHARED_DIR:-$(cd "$root/.." && pwd)/shared}
	[ -d "$shared/testdata/clip" ] || { echo "gpucheck: $shared/testdata/clip not found (set GATA_SHARED_DIR)" >&2; exit 1; }
	mkdir -p "$dir/shared/testdata" "$dir/shared/ref"
	if [ "$dir" = "$root/.gpucheck" ] && ! grep -qx '/.gpucheck/' "$root/.git/info/exclude" 2>/dev/null; then
		echo '/.gpucheck/' >>"$root/.git/info/exclude"
	fi
	echo "== go test -c ./dva/cuda -> $dir/cuda.test"
	(cd "$root" && CGO_ENABLED=1 go test -c -trimpath -ldflags='-s -w -extldflags=-Wl,-z,noexecstack' -o "$dir/cuda.test" ./dva/cuda)
	cp -r "$shared/testdata/clip" "$dir/shared/testdata/"
	cp "$shared/ref/clip_ref.py" "$dir/shared/ref/"
	cp "$0" "$dir/gpucheck.sh"
	du -sh "$dir"
	echo "== on the GPU machine: sh $dir/gpucheck.sh run $dir   (or, from the repository: sh dva/cuda/gpucheck.sh run .gpucheck)"
}

run() {
	dir=$(cd "$dir" && pwd)
	out=${OUT:-$dir/out}
	mkdir -p "$out"
	sum=$out/summary.txt
	: >"$sum"
	export GATA_SHARED_DIR="$dir/shared" GATA_REQUIRE_GPU=1
	bin=$dir/cuda.test
	batch=${BATCH:-256}
	note() { echo "$*" | tee -a "$sum"; }
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$sum" || true
	cd "$dir"

	if [ "${RUN_SUITE:-1}" = 1 ]; then
		note "== suite: the kernels, the conformance suite in this process and through the runner"
		if "$bin" -test.run 'TestGPU|TestDriver|TestOpen' -test.v -test.timeout 8m >"$out/suite.log" 2>&1; then
			note "suite: PASS"
		else
			note "suite: FAIL (see suite.log)"
		fi
		grep -E '^(--- |    --- FAIL|ok|FAIL|PASS)' "$out/suite.log" | grep -v -- '--- PASS: .*/' | head -40 >>"$sum" || true
		grep -E 'GPU: |largest score' "$out/suite.log" | head -3 >>"$sum" || true
	fi

	if [ "${RUN_SANITIZER:-1}" = 1 ]; then
		if command -v compute-sanitizer >/dev/null; then
			for tool in memcheck racecheck synccheck initcheck; do
				note "== compute-sanitizer --tool $tool on the kernel tests"
				if compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin" -test.run 'TestGPUKernels' -test.timeout 8m \
					>"$out/sanitizer-$tool.log" 2>&1; then
					note "compute-sanitizer $tool: clean"
				else
					note "compute-sanitizer $tool: errors or failure (see sanitizer-$tool.log)"
					grep -m 5 -E 'ERROR SUMMARY|Invalid|Race|Barrier|Uninitialized|not supported' "$out/sanitizer-$tool.log" >>"$sum" || true
				fi
			done
		else
			note "compute-sanitizer is not on the PATH: skipped"
		fi
	fi

	model=${GATA_FULL_MODEL:-/tmp/gata-vitb16}
	if [ "${RUN_FULL:-1}" = 1 ] || [ "${RUN_BENCH:-1}" = 1 ]; then
		if [ ! -f "$model/open_clip_model.safetensors" ]; then
			note "== writing the full-size ViT-B/16 (random weights) to $model"
			python3 "$dir/shared/ref/clip_ref.py" --write-full "$model" >"$out/write-full.log" 2>&1 || note "clip_ref.py --write-full failed (see write-full.log)"
		fi
		export GATA_FULL_MODEL="$model"
	fi

	if [ "${RUN_FULL:-1}" = 1 ]; then
		note "== full-size ViT-B/16: GPU against the CPU backend"
		if "$bin" -test.run 'TestGPUFullModel' -test.v -test.timeout 8m >"$out/full.log" 2>&1; then
			note "full model: PASS"
		else
			note "full model: FAIL (see full.log)"
		fi
		grep -E 'largest score|FAIL|score\(' "$out/full.log" | head -10 >>"$sum" || true
	fi

	if [ "${RUN_BENCH:-1}" = 1 ]; then
		note "== benchmark at batch $batch: PyTorch fp16 (clip_ref.py), then this backend, on this card"
		PYTHONUNBUFFERED=1 python3 "$dir/shared/ref/clip_ref.py" --bench --device cuda --dtype fp16 --batch "$batch" \
			>"$out/bench-torch.log" 2>&1 || note "clip_ref.py --bench failed (see bench-torch.log)"
		grep -E 'items/s|gpu:' "$out/bench-torch.log" | tee -a "$sum" || true
		GATA_BENCH_BATCH=$batch "$bin" -test.run '^$' -test.bench 'BenchmarkGPU' -test.benchtime 10x -test.timeout 8m \
			>"$out/bench-go.log" 2>&1 || note "go benchmark failed (see bench-go.log)"
		grep -E '^Benchmark' "$out/bench-go.log" | tee -a "$sum" || true
	fi
	echo "== summary in $sum"
}

case $step in
build) build ;;
run) run ;;
*)
	echo "usage: gpucheck.sh build|run [DIR]" >&2
	exit 2
	;;
esac
