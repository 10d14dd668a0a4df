package agent

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// startDaemon runs bin (from the Debian package pkg) for the test; with args it writes one
// line to file descriptor 3 once it is ready (a display number, a bus address), which
// startDaemon returns.
func startDaemon(t *testing.T, bin, pkg string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s is not installed (make test installs it with the package %s)", bin, pkg)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(path, args...)
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		if line == "" {
			t.Fatalf("%s said nothing on starting", bin)
		}
		return line
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start in 30 s", bin)
	}
	return ""
}

// startXvfb runs a virtual X server for the test and returns its display.
func startXvfb(t *testing.T) string {
	t.Helper()
	return ":" + startDaemon(t, "Xvfb", "xvfb", "-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "640x480x24")
}

// xClient is the test's own connection, standing in for the person and the window manager.
type xClient struct {
	t     *testing.T
	c     *xgb.Conn
	root  xproto.Window
	atoms map[string]xproto.Atom
}

func dialX(t *testing.T, display string) *xClient {
	t.Helper()
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("connect to %s: %v", display, err)
	}
	t.Cleanup(c.Close)
	if err := xtest.Init(c); err != nil {
		t.Fatalf("XTEST: %v", err)
	}
	x := &xClient{t: t, c: c, root: xproto.Setup(c).DefaultScreen(c).Root, atoms: map[string]xproto.Atom{}}
	for _, n := range []string{"_NET_ACTIVE_WINDOW", "_NET_WM_STATE", "_NET_WM_STATE_FULLSCREEN", "_NET_WM_STATE_ABOVE"} {
		r, err := xproto.InternAtom(c, false, uint16(len(n)), n).Reply()
		if err != nil {
			t.Fatal(err)
		}
		x.atoms[n] = r.Atom
	}
	return x
}

func (x *xClient) window() xproto.Window {
	id, err := xproto.NewWindowId(x.c)
	if err != nil {
		x.t.Fatal(err)
	}
	s := xproto.Setup(x.c).DefaultScreen(x.c)
	if err := xproto.CreateWindowChecked(x.c, s.RootDepth, id, x.root, 0, 0, 100, 100, 0,
		xproto.WindowClassInputOutput, s.RootVisual, 0, nil).Check(); err != nil {
		x.t.Fatal(err)
	}
	return id
}

func (x *xClient) setAtoms(w xproto.Window, prop string, typ xproto.Atom, vals ...uint32) {
	buf := make([]byte, 4*len(vals))
	for i, v := range vals {
		xgb.Put32(buf[4*i:], v)
	}
	if err := xproto.ChangePropertyChecked(x.c, xproto.PropModeReplace, w, x.atoms[prop], typ, 32,
		uint32(len(vals)), buf).Check(); err != nil {
		x.t.Fatal(err)
	}
}

// move sends a pointer motion through XTEST, as a mouse would.
func (x *xClient) move(px, py int16) {
	if err := xtest.FakeInputChecked(x.c, xproto.MotionNotify, 0, 0, x.root, px, py, 0).Check(); err != nil {
		x.t.Fatal(err)
	}
	xproto.GetInputFocus(x.c).Reply() // a round trip: the server has taken the motion
}

func TestSystemDesktopX11(t *testing.T) {
	display := startXvfb(t)
	d := &SystemDesktop{Root: t.TempDir(), Display: display, Bus: "-"}
	defer d.Close()
	ctx := context.Background()
	x := dialX(t, display)

	if s := d.State(ctx); !s.IdleKnown || s.FullscreenKnown {
		t.Fatalf("plain X server: %+v, want idle known and fullscreen unknown (no window manager)", s)
	}
	time.Sleep(1200 * time.Millisecond)
	if s := d.State(ctx); s.UserIdle < time.Second {
		t.Errorf("idle %s after 1.2 s with no input, want at least 1 s", s.UserIdle)
	}
	x.move(10, 20)
	if s := d.State(ctx); !s.IdleKnown || s.UserIdle >= time.Second {
		t.Errorf("idle %s (known %v) right after the mouse moved, want under 1 s", s.UserIdle, s.IdleKnown)
	}

	app := x.window()
	steps := []struct {
		name     string
		set      func()
		wantFull bool
	}{
		{"nothing in front", func() { x.setAtoms(x.root, "_NET_ACTIVE_WINDOW", xproto.AtomWindow, 0) }, false},
		{"a window in front", func() { x.setAtoms(x.root, "_NET_ACTIVE_WINDOW", xproto.AtomWindow, uint32(app)) }, false},
		{"kept above, not fullscreen", func() { x.setAtoms(app, "_NET_WM_STATE", xproto.AtomAtom, uint32(x.atoms["_NET_WM_STATE_ABOVE"])) }, false},
		{"fullscreen", func() {
			x.setAtoms(app, "_NET_WM_STATE", xproto.AtomAtom, uint32(x.atoms["_NET_WM_STATE_ABOVE"]), uint32(x.atoms["_NET_WM_STATE_FULLSCREEN"]))
		}, true},
		{"another window in front", func() { x.setAtoms(x.root, "_NET_ACTIVE_WINDOW", xproto.AtomWindow, uint32(x.window())) }, false},
		{"the fullscreen one back in front", func() { x.setAtoms(x.root, "_NET_ACTIVE_WINDOW", xproto.AtomWindow, uint32(app)) }, true},
		{"the window closed", func() {
			if err := xproto.DestroyWindowChecked(x.c, app).Check(); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, st := range steps {
		st.set()
		s := d.State(ctx)
		if !s.FullscreenKnown || s.Fullscreen != st.wantFull {
			t.Errorf("%s: fullscreen %v (known %v), want %v", st.name, s.Fullscreen, s.FullscreenKnown, st.wantFull)
		}
		if !s.IdleKnown {
			t.Errorf("%s: idle unknown", st.name)
		}
	}

	// The governor pauses on what the desktop tells.
	gov := NewGovernor(GovernorOptions{Preferences: Preferences{SuspendFullscreen: true, SuspendWhenActive: true, ActiveGrace: time.Hour}, Desktop: d})
	if s := gov.Evaluate(ctx); s.Run || !strings.Contains(s.Reason, "using the computer") {
		t.Errorf("governor with input a moment ago: %+v, want paused for the person at the computer", s)
	}

	// A display that goes away leaves the answers unknown, not stale.
	x.setAtoms(x.root, "_NET_ACTIVE_WINDOW", xproto.AtomWindow, uint32(x.window()))
	d.Close()
	if s := d.State(ctx); s.IdleKnown || s.FullscreenKnown {
		t.Errorf("a closed desktop opened the display again: %+v", s)
	}
	gone := &SystemDesktop{Root: t.TempDir(), Display: ":65000", Bus: "-"}
	if s := gone.State(ctx); s.IdleKnown || s.FullscreenKnown {
		t.Errorf("no such display: %+v, want nothing known", s)
	}
}

// idleMonitor answers GetIdletime as GNOME's mutter does, on a real session bus.
type idleMonitor struct {
	mu sync.Mutex
	ms uint64
}

func (m *idleMonitor) GetIdletime() (uint64, *dbus.Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ms, nil
}

// startSessionBus runs a private dbus-daemon for the test and returns its address.
func startSessionBus(t *testing.T) string {
	t.Helper()
	return startDaemon(t, "dbus-daemon", "dbus-daemon", "--session", "--nofork", "--print-address=3")
}

// TestSystemDesktopGNOMEIdle: with no X display, the idle time comes from GNOME's idle
// monitor on the session bus; without one there, it is unknown.
func TestSystemDesktopGNOMEIdle(t *testing.T) {
	addr := startSessionBus(t)
	ctx := context.Background()
	d := &SystemDesktop{Root: t.TempDir(), Display: "-", Bus: addr}
	defer d.Close()
	if s := d.State(ctx); s.IdleKnown {
		t.Fatalf("a bus without GNOME's monitor: %+v, want idle unknown", s)
	}

	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mon := &idleMonitor{ms: 90_000}
	if err := conn.Export(mon, idleMonitorPath, idleMonitorName); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(idleMonitorName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", idleMonitorName, reply, err)
	}
	d = &SystemDesktop{Root: t.TempDir(), Display: "-", Bus: addr} // a fresh one: no wait to ask again
	defer d.Close()
	if s := d.State(ctx); !s.IdleKnown || s.UserIdle != 90*time.Second || s.FullscreenKnown {
		t.Errorf("GNOME's monitor at 90 s idle: %+v", s)
	}
	mon.mu.Lock()
	mon.ms = 400
	mon.mu.Unlock()
	gov := NewGovernor(GovernorOptions{Preferences: Preferences{SuspendWhenActive: true, ActiveGrace: time.Minute}, Desktop: d})
	if s := gov.Evaluate(ctx); s.Run || !strings.Contains(s.Reason, "using the computer") {
		t.Errorf("governor with input 0.4 s ago: %+v, want paused for the person at the computer", s)
	}
}
