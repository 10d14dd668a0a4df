#!/usr/bin/env bash
# bench.sh — the speed of batch runs, in one go on this machine:
#   1. decode + preprocess of a 600x400 JPEG (quality 90) on one core: Go vs PIL
#      (clip_ref.py --bench), and Go on every core;
#   2. the whole pipeline (folder source, decode, scoring, results saved to SQLite) over
#      PAIRS photo-sized JPEG–caption pairs with the tiny test model (decode-bound);
#   3. the whole pipeline with the full-size ViT-B/16 (random weights) over FULL_PAIRS
#      pairs vs the engine alone on the same pairs already decoded (model-bound).
#
#   dva/pipeline/bench.sh
#   PAIRS=2000 FULL_PAIRS=64 TINY_RUNS=3 FULL_RUNS=3 dva/pipeline/bench.sh
#
# The data (CACHE, default /tmp/gata-bench-pipeline) and the full-size model (MODEL_DIR,
# default $GATA_BENCH_MODEL or /tmp/gata-vitb16) are written once and reused. Medians of
# RUNS runs of the preprocessing, TINY_RUNS and FULL_RUNS of the pipelines (default 1 each:
# on 2 cores one run of each takes about 3 and 6 minutes). Every figure also comes "by CPU time",
# what the CPU time used would give with every core to itself, since a shared machine
# makes the wall clock lie.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${GATA_SHARED_DIR:-$(cd "$root/.." && pwd)/shared}
ref=$shared/ref/clip_ref.py
tiny=${GATA_BENCH_TINY_MODEL:-$shared/testdata/clip}
model=${MODEL_DIR:-${GATA_BENCH_MODEL:-/tmp/gata-vitb16}}
cache=${CACHE:-/tmp/gata-bench-pipeline}
pairs=${PAIRS:-10000}
full_pairs=${FULL_PAIRS:-256}
runs=${RUNS:-3}
tiny_runs=${TINY_RUNS:-1}
full_runs=${FULL_RUNS:-1}
pyruns=${PYRUNS:-5}
py=${PYTHON:-/usr/bin/python3}

[ -f "$ref" ] || { echo "bench.sh: $ref not found (set GATA_SHARED_DIR)" >&2; exit 1; }
[ -f "$tiny/open_clip_config.json" ] || { echo "bench.sh: no model in $tiny (set GATA_BENCH_TINY_MODEL)" >&2; exit 1; }
if [ ! -f "$model/open_clip_model.safetensors" ]; then
	echo "== writing the full-size ViT-B/16 to $model (once)"
	"$py" "$ref" --write-full "$model"
fi

photo=$cache/photo
data=$cache/pairs-$pairs
if [ ! -f "$photo/coffee-600x400-q90.jpg" ] || [ ! -f "$data/.complete" ]; then
	echo "== writing the bench data to $cache (once)"
	"$py" - "$shared/testdata/clip" "$photo" "$data" "$pairs" <<'EOF'
import io, os, random, sys
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageEnhance

src, photo_dir, data_dir, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.makedirs(photo_dir, exist_ok=True)
# The photo both sides time: coffee at 600x400, as coffee.png for clip_ref.py (which
# encodes it to JPEG quality 90 itself) and as that same JPEG for Go.
coffee = Image.open(os.path.join(src, "coffee.jpg")).convert("RGB").resize((600, 400), Image.BICUBIC)
coffee.save(os.path.join(photo_dir, "coffee.png"))
coffee.save(os.path.join(photo_dir, "coffee-600x400-q90.jpg"), format="JPEG", quality=90)

PHOTOS = {"coffee.jpg": "a cup of coffee on a saucer", "astronaut.jpg": "an astronaut with a flag",
          "chelsea.jpg": "a tabby cat", "rocket.jpg": "a rocket on the launch pad",
          "retina.jpg": "a scan of a human retina"}
sources = [(Image.open(os.path.join(src, f)).convert("RGB"), c) for f, c in PHOTOS.items()]

def write(i):
    """pair i: one of the photos, cropped a little, resized to between 600x400 and
    1024x768, its colours and noise changed a little, as JPEG of quality 85-95."""
    r = random.Random(i)
    img, caption = sources[i % len(sources)]
    w, h = img.size
    dx, dy = int(w * r.uniform(0, 0.1)), int(h * r.uniform(0, 0.1))
    img = img.crop((dx, dy, w - int(w * r.uniform(0, 0.1)), h - int(h * r.uniform(0, 0.1))))
    img = img.resize((r.randint(600, 1024), r.randint(400, 768)), Image.BICUBIC)
    img = ImageEnhance.Brightness(img).enhance(r.uniform(0.9, 1.1))
    a = np.asarray(img, dtype=np.int16) + np.random.default_rng(i).integers(-4, 5, (img.height, img.width, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    base = os.path.join(data_dir, "%03d" % (i // 1000), "%05d" % i)
    img.save(base + ".jpg", format="JPEG", quality=r.randint(85, 95))
    with open(base + ".txt", "w") as f:
        f.write("%s, picture %d\n" % (caption, i))

for k in range((n + 999) // 1000):
    os.makedirs(os.path.join(data_dir, "%03d" % k), exist_ok=True)
with Pool(os.cpu_count()) as p:
    p.map(write, range(n), chunksize=64)
open(os.path.join(data_dir, ".complete"), "w").write("%d\n" % n)
EOF
fi
jpeg=$photo/coffee-600x400-q90.jpg
echo "data: $data ($pairs pairs, $(du -sh "$data" | cut -f1)); photo: $jpeg"

echo "== PIL: clip_ref.py --bench --threads 1 --batch 1 --runs $pyruns (its last line: preprocessing on one core)"
# The towers come first; at batch 1 they take seconds. Only the preprocessing line is used.
py_out=$("$py" "$ref" --bench --threads 1 --batch 1 --runs "$pyruns" --skimage-dir "$photo" 2>&1) ||
	echo "(clip_ref.py --bench exited with an error; its last lines follow)"
grep -E '^(preprocess|load average|torch)' <<<"$py_out" || tail -n 20 <<<"$py_out"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go test -c -o "$work/pipeline.test" ./dva/pipeline)
gobench() { # PATTERN BENCHTIME COUNT
	(cd "$here" && GATA_BENCH_JPEG="$jpeg" GATA_BENCH_DATA="$data" GATA_BENCH_TINY_MODEL="$tiny" \
		GATA_BENCH_MODEL="$model" GATA_BENCH_FULL_PAIRS="$full_pairs" \
		"$work/pipeline.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" -test.count "$3" \
		-test.timeout 60m 2>&1)
}
echo "== Go: BenchmarkPreprocess, $runs runs"
go_out=$(gobench '^BenchmarkPreprocess$' 2s "$runs")
echo "$go_out"
echo "== Go: BenchmarkPipelineTiny, $pairs pairs, $tiny_runs runs"
tiny_out=$(gobench '^BenchmarkPipelineTiny$' 1x "$tiny_runs")
echo "$tiny_out"
echo "== Go: BenchmarkPipelineViTB16, $full_pairs pairs, $full_runs runs"
full_out=$(gobench '^BenchmarkPipelineViTB16$' 1x "$full_runs")
echo "$full_out"
go_out+=$'\n'$tiny_out$'\n'$full_out

# goval BENCH UNIT: the median over the runs of the value before UNIT on the lines of BENCH.
goval() {
	grep -E "^$1(-[0-9]+)?[[:space:]]" <<<"$go_out" |
		awk -v u="$2" '{for (i = 2; i <= NF; i++) if ($i == u) print $(i-1)}' |
		sort -g | awk '{v[NR] = $1} END { if (NR) print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
pct() { awk -v a="$1" 'BEGIN { if (a == "") print "n/a"; else printf "%.0f%%", 100 * a }'; }

pyline=$(grep -m1 '^preprocess' <<<"$py_out" || true)
pil=$(sed -n 's/.*: \([0-9.]*\) images\/s.*/\1/p' <<<"$pyline")
pil_cw=$(sed -n 's/.*cpu\/wall \([0-9.]*\)).*/\1/p' <<<"$pyline")
pil_cpu=$(awk -v r="$pil" -v c="$pil_cw" 'BEGIN { if (r != "" && c > 0) printf "%.1f", r / c }')
cores=$(nproc)

echo
echo "== summary: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians; \"cpu\" = by CPU time, as if every thread had its own core"
printf '%-44s %10s %10s %8s\n' "" "wall" "cpu" ""
row() { printf '%-44s %10s %10s %8s\n' "$@"; }
g1=$(goval BenchmarkPreprocess/1core images/s) g1c=$(goval BenchmarkPreprocess/1core images/s-cpu-est)
row "preprocess 600x400 JPEG, PIL, 1 core" "$pil" "$pil_cpu" "img/s"
row "preprocess 600x400 JPEG, Go, 1 core" "$g1" "$g1c" "img/s"
row "  Go / PIL per core" "$(ratio "$g1" "$pil")" "$(ratio "$g1c" "$pil_cpu")" ""
row "preprocess 600x400 JPEG, Go, $cores cores" "$(goval BenchmarkPreprocess/allcores images/s)" \
	"$(goval BenchmarkPreprocess/allcores images/s-cpu-est)" "img/s"
row "pipeline, tiny model, $pairs pairs" "$(goval BenchmarkPipelineTiny pairs/s)" \
	"$(goval BenchmarkPipelineTiny pairs/s-cpu-est)" "pairs/s"
row "  CPU utilisation, peak RSS" "$(pct "$(goval BenchmarkPipelineTiny cpu-util)")" \
	"$(goval BenchmarkPipelineTiny peak-RSS-MiB)" "%, MiB"
row "  share of the run the model was scoring" "$(pct "$(goval BenchmarkPipelineTiny scorer-busy)")" "" ""
pw=$(goval BenchmarkPipelineViTB16/pipeline pairs/s) pc=$(goval BenchmarkPipelineViTB16/pipeline pairs/s-cpu-est)
ew=$(goval BenchmarkPipelineViTB16/engine pairs/s) ec=$(goval BenchmarkPipelineViTB16/engine pairs/s-cpu-est)
row "engine alone, ViT-B/16, $full_pairs decoded pairs" "$ew" "$ec" "pairs/s"
row "pipeline, ViT-B/16, $full_pairs pairs" "$pw" "$pc" "pairs/s"
row "  pipeline / engine" "$(ratio "$pw" "$ew")" "$(ratio "$pc" "$ec")" ""
row "  share of the run the model was scoring" "$(pct "$(goval BenchmarkPipelineViTB16/pipeline scorer-busy)")" "" ""
row "  CPU utilisation, peak RSS" "$(pct "$(goval BenchmarkPipelineViTB16/pipeline cpu-util)")" \
	"$(goval BenchmarkPipelineViTB16/pipeline peak-RSS-MiB)" "%, MiB"
