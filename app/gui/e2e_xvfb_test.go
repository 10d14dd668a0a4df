//go:build e2e

package gui

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/dva/dvatest"
	"github.com/gata-contrib/gata/storage"
)

// TestWindowUnderXvfb builds the real binary, runs it on a virtual X display, checks that its
// window is mapped and draws something, saves a screenshot, and stops it with SIGTERM.
func TestWindowUnderXvfb(t *testing.T) {
	xvfb := "/usr/bin/Xvfb"
	if _, err := os.Stat(xvfb); err != nil {
		p, lerr := exec.LookPath("Xvfb")
		if lerr != nil {
			t.Fatalf("Xvfb is missing (install the xvfb package; make test does): %v", err)
		}
		xvfb = p
	}
	importBin, err := exec.LookPath("import")
	if err != nil {
		t.Fatalf("ImageMagick's import is missing (install the imagemagick package): %v", err)
	}
	xwininfo, _ := exec.LookPath("xwininfo") // optional: without it the screenshots tell

	artifacts := os.Getenv("GATA_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(t.TempDir(), "artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts in %s", artifacts)

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "gata")
	build := exec.Command("go", "build", "-ldflags=-extldflags=-Wl,-z,noexecstack", "-o", bin, "github.com/gata-contrib/gata")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build the app: %v\n%s", err, out)
	}

	display := startXvfb(t, xvfb)
	t.Logf("Xvfb on %s", display)

	// The data folder starts with the Validate model set to the small model folder of the
	// shared test data, the way a user would choose it in Settings.
	dataDir := filepath.Join(tmp, "data")
	clipDir := dvatest.ClipDir(t)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(context.Background(), filepath.Join(dataDir, storage.DBName))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetSettings(context.Background(), map[string]string{core.SettingModel: clipDir}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A batch run over a folder of the shared photos, made with the CLI before the window
	// opens, for the review view.
	photos := photoFolder(t, clipDir, 9)
	run := exec.Command(bin, "dva", "run", photos, "--model", clipDir, "--out", filepath.Join(tmp, "out"), "--keep-top", "0.5")
	run.Env = append(os.Environ(), "GATA_DATA_DIR="+dataDir)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("gata dva run: %v\n%s", err, out)
	}
	logPath := filepath.Join(artifacts, "gata-e2e.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	app := exec.Command(bin, "--data-dir", dataDir, "--addr", "127.0.0.1:0")
	app.Env = append(os.Environ(), "DISPLAY="+display)
	// Fyne's preferences and caches go to folders of this test, not the user's.
	for _, v := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"} {
		d := filepath.Join(tmp, strings.ToLower(v))
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		app.Env = append(app.Env, v+"="+d)
	}
	app.Stdout, app.Stderr = logFile, logFile
	if err := app.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			app.Process.Kill()
			<-exited
		}
	}()
	appLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	// The window is mapped.
	deadline := time.Now().Add(60 * time.Second)
	var winInfo []byte
	if xwininfo != "" {
		for {
			out, _ := exec.Command(xwininfo, "-display", display, "-name", Title).CombinedOutput()
			if bytes.Contains(out, []byte("IsViewable")) {
				winInfo = out
				t.Logf("window mapped:\n%s", geometry(out))
				if w := field(out, "Width"); w < 800 {
					t.Errorf("window is %d pixels wide, want about 1000", w)
				}
				break
			}
			select {
			case err := <-exited:
				stopped = true
				t.Fatalf("the app exited before showing its window: %v\n%s", err, appLog())
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no window %q mapped within a minute; app log:\n%s", Title, appLog())
			}
		}
	}

	// It draws: take screenshots until one is clearly not blank (the first frames may be).
	shot := filepath.Join(artifacts, "window.png")
	var st imageStats
	for {
		out, err := exec.Command(importBin, "-display", display, "-window", "root", "png:"+shot).CombinedOutput()
		if err != nil {
			t.Fatalf("screenshot with import: %v\n%s", err, out)
		}
		st, err = statsOf(shot)
		if err != nil {
			t.Fatal(err)
		}
		if st.colours >= 64 && st.stddev >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("screenshot %s still looks blank after a minute: %+v; app log:\n%s", shot, st, appLog())
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("screenshot %s: %dx%d, %d distinct colours, luminance mean %.1f stddev %.1f",
		shot, st.w, st.h, st.colours, st.mean, st.stddev)

	// A click on Validate in the sidebar opens the section: its button turns the primary
	// colour, and the model card shows the chosen folder ready.
	if winInfo == nil {
		t.Fatal("xwininfo is missing (install the x11-utils package): the test needs the window's position to click in it")
	}
	x0, y0, width := field(winInfo, "Absolute upper-left X"), field(winInfo, "Absolute upper-left Y"), field(winInfo, "Width")
	scale := float64(width) / 1000 // the window is 1000 units wide
	at := func(x, y float64) (int, int) { return x0 + int(x*scale), y0 + int(y*scale) }
	// The sidebar's buttons: padding 4+4, the logo row and separator 45, each button 36 high
	// and 40 apart, Validate second; x 170 is inside the button, right of its label.
	bx, by := at(4+4+170, 4+4+45+40+18)
	if c := pixel(t, shot, bx, by); isPrimary(c) {
		t.Fatalf("Validate's sidebar button at %d,%d is already highlighted (%v) before the click", bx, by, c)
	}
	xc, err := dialX(display)
	if err != nil {
		t.Fatal(err)
	}
	defer xc.Close()
	if err := xc.click(at(4+4+94, 4+4+45+40+18)); err != nil {
		t.Fatal(err)
	}
	vshot := filepath.Join(artifacts, "validate.png")
	for {
		time.Sleep(500 * time.Millisecond)
		out, err := exec.Command(importBin, "-display", display, "-window", "root", "png:"+vshot).CombinedOutput()
		if err != nil {
			t.Fatalf("screenshot with import: %v\n%s", err, out)
		}
		if c := pixel(t, vshot, bx, by); isPrimary(c) {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("Validate's sidebar button not highlighted after the click (%v at %d,%d); see %s; app log:\n%s",
				pixel(t, vshot, bx, by), bx, by, vshot, appLog())
		}
	}
	vst, err := statsOf(vshot)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %d distinct colours, luminance mean %.1f stddev %.1f", vshot, vst.colours, vst.mean, vst.stddev)

	// The runs card lists the run; its Review button (the lowest primary-coloured button of
	// the page, once the page is scrolled down a little) opens the review view.
	sx, sy := at(600, 400)
	if err := xc.scroll(sx, sy, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	rshot := filepath.Join(artifacts, "runs.png")
	if out, err := exec.Command(importBin, "-display", display, "-window", "root", "png:"+rshot).CombinedOutput(); err != nil {
		t.Fatalf("screenshot with import: %v\n%s", err, out)
	}
	left, _ := at(220, 0)
	rx, ry, ok := lowestPrimary(t, rshot, left)
	if !ok {
		t.Fatalf("no Review button found in %s", rshot)
	}
	if err := xc.click(rx, ry); err != nil {
		t.Fatal(err)
	}
	// The review view shows the Reject button in the danger colour, and the pair's image.
	reviewShot := filepath.Join(artifacts, "review.png")
	for {
		time.Sleep(500 * time.Millisecond)
		out, err := exec.Command(importBin, "-display", display, "-window", "root", "png:"+reviewShot).CombinedOutput()
		if err != nil {
			t.Fatalf("screenshot with import: %v\n%s", err, out)
		}
		if n := countPixels(t, reviewShot, isDanger); n > 300 {
			time.Sleep(time.Second) // the image loads off the UI goroutine
			if out, err := exec.Command(importBin, "-display", display, "-window", "root", "png:"+reviewShot).CombinedOutput(); err != nil {
				t.Fatalf("screenshot with import: %v\n%s", err, out)
			}
			break
		}
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("no review view after clicking %d,%d; see %s and %s; app log:\n%s", rx, ry, rshot, reviewShot, appLog())
		}
	}
	rst, err := statsOf(reviewShot)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %d distinct colours, luminance mean %.1f stddev %.1f", reviewShot, rst.colours, rst.mean, rst.stddev)

	// SIGTERM ends it cleanly.
	if err := app.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("app after SIGTERM: %v, want exit status 0; log:\n%s", err, appLog())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("app still running 30s after SIGTERM; log:\n%s", appLog())
	}
	t.Logf("exited with status 0 after SIGTERM")
	if log := appLog(); strings.Contains(log, "panic:") || strings.Contains(log, "DATA RACE") {
		t.Errorf("app log has a panic or race:\n%s", log)
	}
}

// startXvfb starts a virtual display on a number Xvfb picks itself and returns its name.
func startXvfb(t *testing.T, xvfb string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w} // fd 3
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		num <- strings.TrimSpace(line)
	}()
	select {
	case n := <-num:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not report a display number (%q): %s", n, stderr.String())
		}
		return ":" + n
	case err := <-done:
		t.Fatalf("Xvfb exited: %v: %s", err, stderr.String())
	case <-ctx.Done():
		t.Fatalf("Xvfb did not start within 30s: %s", stderr.String())
	}
	return ""
}

var geomLine = regexp.MustCompile(`(?m)^\s*(Absolute upper-left X|Absolute upper-left Y|Width|Height|Map State):.*$`)

func geometry(xwininfo []byte) string {
	return strings.Join(geomLine.FindAllString(string(xwininfo), -1), "\n")
}

func field(xwininfo []byte, name string) int {
	m := regexp.MustCompile(`(?m)^\s*` + name + `:\s*(\d+)`).FindSubmatch(xwininfo)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// pixel is the colour at x, y of a PNG, 8 bits a channel.
func pixel(t *testing.T, path string, x, y int) [3]uint8 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot %s: %v", path, err)
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

// isPrimary reports whether a colour is the theme's blue primary (a highlighted button).
func isPrimary(c [3]uint8) bool { return int(c[2]) > int(c[0])+60 && int(c[2]) > int(c[1])+30 }

type imageStats struct {
	w, h         int
	colours      int
	mean, stddev float64
}

// statsOf counts the distinct colours of a PNG and the spread of its luminance.
func statsOf(path string) (imageStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageStats{}, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return imageStats{}, fmt.Errorf("decode screenshot %s: %w", path, err)
	}
	b := img.Bounds()
	if b.Empty() {
		return imageStats{}, errors.New("empty screenshot")
	}
	seen := map[[3]uint32]bool{}
	var sum, sum2 float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			l := (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(bl)) / 257
			sum += l
			sum2 += l * l
		}
	}
	n := float64(b.Dx() * b.Dy())
	mean := sum / n
	return imageStats{w: b.Dx(), h: b.Dy(), colours: len(seen), mean: mean,
		stddev: math.Sqrt(math.Max(sum2/n-mean*mean, 0))}, nil
}

// photoFolder writes n copies of the shared photos with .txt captions into a new folder.
func photoFolder(t *testing.T, clipDir string, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "photos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	photos := []struct{ file, caption string }{
		{"chelsea.jpg", "a tabby cat looking up at the camera"},
		{"camera_gray_224x229.png", "a man with a camera on a tripod"},
		{"coffee.jpg", "a cup of coffee on a saucer"},
	}
	for i := range n {
		p := photos[i%len(photos)]
		data, err := os.ReadFile(filepath.Join(clipDir, p.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d%s", i, filepath.Ext(p.file))), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.txt", i)), []byte(fmt.Sprintf("%s, photo %d\n", p.caption, i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// isDanger reports whether a colour is the theme's red (a danger button).
func isDanger(c [3]uint8) bool { return int(c[0]) > int(c[1])+80 && int(c[0]) > int(c[2])+60 }

// countPixels counts the pixels of a PNG that match.
func countPixels(t *testing.T, path string, match func([3]uint8) bool) int {
	t.Helper()
	img := decodePNG(t, path)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if match([3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}) {
				n++
			}
		}
	}
	return n
}

// lowestPrimary finds the lowest band of rows, right of x0, with at least 20 pixels in the
// primary colour (a highlighted button), and returns its centre.
func lowestPrimary(t *testing.T, path string, x0 int) (int, int, bool) {
	t.Helper()
	img := decodePNG(t, path)
	b := img.Bounds()
	type band struct{ y0, y1, xs, n int }
	var bands []band
	inBand := false
	for y := b.Min.Y; y < b.Max.Y; y++ {
		xs, n := 0, 0
		for x := max(x0, b.Min.X); x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if isPrimary([3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}) {
				xs += x
				n++
			}
		}
		switch {
		case n >= 20 && inBand:
			last := &bands[len(bands)-1]
			last.y1, last.xs, last.n = y, last.xs+xs, last.n+n
		case n >= 20:
			bands = append(bands, band{y0: y, y1: y, xs: xs, n: n})
			inBand = true
		default:
			inBand = false
		}
	}
	for i := len(bands) - 1; i >= 0; i-- {
		if bd := bands[i]; bd.y1-bd.y0 >= 10 {
			return bd.xs / bd.n, (bd.y0 + bd.y1) / 2, true
		}
	}
	return 0, 0, false
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot %s: %v", path, err)
	}
	return img
}
