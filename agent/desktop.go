package agent

import (
	"context"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/screensaver"
	"github.com/jezek/xgb/xproto"
)

// SystemDesktop asks the operating system what it tells: on Linux, whether the machine
// runs on battery (/sys/class/power_supply) and, on an X11 display, how long since the last
// keyboard or mouse input (the MIT-SCREEN-SAVER extension) and whether the window in front
// is fullscreen (the window manager's _NET_ACTIVE_WINDOW and _NET_WM_STATE). Where X11 does
// not tell the idle time (a GNOME Wayland session), it asks GNOME's idle monitor on the
// session bus. What it cannot learn (no display, a window manager without those hints,
// fullscreen under Wayland) it reports as unknown, and those preferences have no effect.
// It is safe for concurrent use.
type SystemDesktop struct {
	// Root is where the power supply folder is looked up ("" is /sys/class/power_supply).
	Root string
	// Display is the X display to ask ("" is $DISPLAY; "-" asks none).
	Display string
	// Bus is the session bus to ask for the idle time when X11 does not tell ("" is
	// $DBUS_SESSION_BUS_ADDRESS; "-" asks none).
	Bus string

	mu       sync.Mutex
	x        *xgb.Conn
	xRoot    xproto.Window
	atoms    map[string]xproto.Atom
	noSaver  bool      // the server has no MIT-SCREEN-SAVER extension
	retry    time.Time // when to try connecting again after a failure
	bus      *dbus.Conn
	busRetry time.Time
	closed   bool // after Close nothing is opened again
}

// xRetry is how long the desktop waits before connecting again to a display it lost or
// could not reach.
const xRetry = 10 * time.Second

// State reads the power supplies, the session bus and the display.
func (d *SystemDesktop) State(ctx context.Context) DesktopState {
	s := d.battery()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return s
	}
	d.x11(&s)
	// GNOME's own monitor counts every input, also to Wayland programs that an X client
	// (even on XWayland) does not see: it wins where it answers.
	if idle, ok := d.busIdle(ctx); ok {
		s.IdleKnown, s.UserIdle = true, idle
	}
	return s
}

// x11 reads the idle time and the fullscreen window from the X display, if one is open.
func (d *SystemDesktop) x11(s *DesktopState) {
	if !d.connect() {
		return
	}
	ok := true
	if !d.noSaver {
		info, err := screensaver.QueryInfo(d.x, xproto.Drawable(d.xRoot)).Reply()
		if err == nil {
			s.IdleKnown, s.UserIdle = true, time.Duration(info.MsSinceUserInput)*time.Millisecond
		} else {
			ok = false
		}
	}
	if ok {
		s.Fullscreen, s.FullscreenKnown, ok = d.fullscreen()
	}
	if !ok { // the connection broke: ask again later on a new one
		d.closeLocked()
		d.retry = time.Now().Add(xRetry)
		s.IdleKnown, s.FullscreenKnown = false, false
	}
}

// The GNOME idle monitor (mutter's org.gnome.Mutter.IdleMonitor), which tells the idle
// time under Wayland, where no X client may read it.
const (
	idleMonitorName   = "org.gnome.Mutter.IdleMonitor"
	idleMonitorPath   = "/org/gnome/Mutter/IdleMonitor/Core"
	idleMonitorMethod = idleMonitorName + ".GetIdletime"
)

// busIdle asks the session bus's idle monitor for the time since the last input.
func (d *SystemDesktop) busIdle(ctx context.Context) (time.Duration, bool) {
	if d.bus == nil {
		addr := d.Bus
		if addr == "" {
			addr = os.Getenv("DBUS_SESSION_BUS_ADDRESS")
		}
		if addr == "" || addr == "-" || time.Now().Before(d.busRetry) {
			return 0, false
		}
		c, err := dbus.Connect(addr)
		if err != nil {
			d.busRetry = time.Now().Add(xRetry)
			return 0, false
		}
		d.bus = c
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var ms uint64
	if err := d.bus.Object(idleMonitorName, idleMonitorPath).CallWithContext(cctx, idleMonitorMethod, 0).Store(&ms); err != nil {
		// No GNOME here, or the bus went away: ask again later.
		d.bus.Close()
		d.bus = nil
		d.busRetry = time.Now().Add(xRetry)
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// Close ends the connections to the display and the session bus, if any; after it the
// desktop tells only the battery.
func (d *SystemDesktop) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.closeLocked()
	if d.bus != nil {
		d.bus.Close()
		d.bus = nil
	}
}

func (d *SystemDesktop) closeLocked() {
	if d.x != nil {
		d.x.Close()
		d.x = nil
	}
}

var quietXGB sync.Once

// connect opens the display connection when there is none; it reports whether one is open.
func (d *SystemDesktop) connect() bool {
	if d.x != nil {
		return true
	}
	display := d.Display
	if display == "" {
		display = os.Getenv("DISPLAY")
	}
	if display == "" || display == "-" || time.Now().Before(d.retry) {
		return false
	}
	// The X library writes its own notes to stderr; this program says what matters itself.
	quietXGB.Do(func() { xgb.Logger = log.New(io.Discard, "", 0) })
	x, err := xgb.NewConnDisplay(display)
	if err != nil {
		d.retry = time.Now().Add(xRetry)
		return false
	}
	d.x = x
	d.xRoot = xproto.Setup(x).DefaultScreen(x).Root
	d.noSaver = screensaver.Init(x) != nil
	d.atoms = map[string]xproto.Atom{}
	for _, name := range []string{"_NET_ACTIVE_WINDOW", "_NET_WM_STATE", "_NET_WM_STATE_FULLSCREEN"} {
		r, err := xproto.InternAtom(x, false, uint16(len(name)), name).Reply()
		if err != nil {
			d.closeLocked()
			d.retry = time.Now().Add(xRetry)
			return false
		}
		d.atoms[name] = r.Atom
	}
	return true
}

// fullscreen reports whether the active window is fullscreen and whether that is known (the
// window manager names the active window); ok is false when the connection failed.
func (d *SystemDesktop) fullscreen() (full, known, ok bool) {
	active, err := xproto.GetProperty(d.x, false, d.xRoot, d.atoms["_NET_ACTIVE_WINDOW"], xproto.AtomWindow, 0, 1).Reply()
	if err != nil {
		return false, false, false
	}
	if active.Format != 32 || active.ValueLen == 0 {
		return false, false, true // no window manager that tells
	}
	win := xproto.Window(xgb.Get32(active.Value))
	if win == 0 {
		return false, true, true // nothing in front
	}
	st, err := xproto.GetProperty(d.x, false, win, d.atoms["_NET_WM_STATE"], xproto.AtomAtom, 0, 64).Reply()
	if err != nil {
		// The window may have closed since the manager named it: known, and not fullscreen.
		if _, isX := err.(xproto.WindowError); isX {
			return false, true, true
		}
		return false, false, false
	}
	if st.Format != 32 {
		return false, true, true
	}
	want := d.atoms["_NET_WM_STATE_FULLSCREEN"]
	for i := 0; i+4 <= len(st.Value); i += 4 {
		if xproto.Atom(xgb.Get32(st.Value[i:])) == want {
			return true, true, true
		}
	}
	return false, true, true
}

// battery reads the power supplies.
func (d *SystemDesktop) battery() DesktopState {
	root := d.Root
	if root == "" {
		root = "/sys/class/power_supply"
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return DesktopState{}
	}
	var haveBattery, mains, mainsOnline bool
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		typ := readTrim(filepath.Join(dir, "type"))
		switch typ {
		case "Battery":
			haveBattery = true
		case "Mains":
			mains = true
			if readTrim(filepath.Join(dir, "online")) == "1" {
				mainsOnline = true
			}
		}
	}
	if !haveBattery || !mains {
		return DesktopState{}
	}
	return DesktopState{BatteryKnown: true, OnBattery: !mainsOnline}
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
