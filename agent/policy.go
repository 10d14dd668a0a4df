package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// GPU is one graphics card as the telemetry sees it now.
type GPU struct {
	Index       int     `json:"index"`
	Name        string  `json:"name"`
	UUID        string  `json:"uuid,omitempty"`
	MemoryTotal uint64  `json:"memory_total"` // bytes
	MemoryUsed  uint64  `json:"memory_used"`
	Utilization int     `json:"utilization"` // percent
	TempC       float64 `json:"temp_c"`
	PowerW      float64 `json:"power_w"`
	PowerLimitW float64 `json:"power_limit_w"`
	SMClockMHz  int     `json:"sm_clock_mhz"`
	MemClockMHz int     `json:"mem_clock_mhz"`
	// OtherProcesses counts the processes of other programs using the card.
	OtherProcesses int `json:"other_processes"`
}

// Telemetry reads the GPUs; NVML implements it, and tests give a fake. A machine without
// NVIDIA cards has none (the CPU is shared then).
type Telemetry interface {
	GPUs(ctx context.Context) ([]GPU, error)
}

// Desktop tells what the operating system knows of the person at the machine; each answer
// says whether it is known.
type Desktop interface {
	State(ctx context.Context) DesktopState
}

// DesktopState is what the OS told.
type DesktopState struct {
	UserIdle        time.Duration // since the last keyboard or mouse input
	IdleKnown       bool
	Fullscreen      bool // a fullscreen program is in front
	FullscreenKnown bool
	OnBattery       bool
	BatteryKnown    bool
}

// Window is a daily time window, [Start, End) since midnight; End before Start crosses
// midnight (22:00-07:00).
type Window struct {
	Start, End time.Duration
}

func (w Window) String() string {
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return f(w.Start) + "-" + f(w.End)
}

// contains reports whether the time of day t (since midnight) is in the window.
func (w Window) contains(t time.Duration) bool {
	if w.Start <= w.End {
		return t >= w.Start && t < w.End
	}
	return t >= w.Start || t < w.End
}

// ParseSchedule reads comma-separated windows "HH:MM-HH:MM" ("" is any time).
func ParseSchedule(s string) ([]Window, error) {
	var out []Window
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("schedule %q: want HH:MM-HH:MM", part)
		}
		start, err := clock(a)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", part, err)
		}
		end, err := clock(b)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", part, err)
		}
		out = append(out, Window{Start: start, End: end})
	}
	return out, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// Preferences are the owner's limits on sharing. The zero value shares all the time.
type Preferences struct {
	// GPUs lists the card indexes that may be used; empty means all.
	GPUs []int `json:"gpus,omitempty"`
	// RequireIdle runs only while no other program uses the cards, and only after they
	// have been free of other programs for IdleGrace.
	RequireIdle bool          `json:"require_idle"`
	IdleGrace   time.Duration `json:"idle_grace"`
	// SuspendWhenActive pauses while the person used keyboard or mouse within ActiveGrace
	// (where the OS tells).
	SuspendWhenActive bool          `json:"suspend_when_active"`
	ActiveGrace       time.Duration `json:"active_grace"`
	// SuspendFullscreen pauses while a fullscreen program runs (where the OS tells).
	SuspendFullscreen bool `json:"suspend_fullscreen"`
	// Schedule lists when sharing may run; empty means any time.
	Schedule []Window `json:"schedule,omitempty"`
	// Paused pauses until it is cleared (the window's "Pause sharing").
	Paused bool `json:"paused,omitempty"`
	// PauseUntil pauses everything until then (pause for 1 h, 4 h, until tomorrow).
	PauseUntil time.Time `json:"pause_until,omitzero"`
	// MaxTempC pauses a card at or above this temperature (it resumes 3 °C below) and
	// slows the work down in the 5 °C before it; 0: no limit.
	MaxTempC float64 `json:"max_temp_c,omitempty"`
	// MaxPowerW keeps a card's draw under this by working only part of the time (the
	// duty cycle); the card's own settings are never changed. 0: no limit.
	MaxPowerW float64 `json:"max_power_w,omitempty"`
	// SuspendOnBattery pauses while the machine runs on battery.
	SuspendOnBattery bool `json:"suspend_on_battery"`
}

// Default grace periods.
const (
	DefaultIdleGrace   = 30 * time.Second
	DefaultActiveGrace = 3 * time.Minute
	// DefaultPollInterval is how often the governor reads the telemetry; with batches well
	// under a second it keeps the time to yield under the 2 s promised.
	DefaultPollInterval = 500 * time.Millisecond
	minDuty             = 0.1
)

// PauseFor returns the time a "pause for" choice ends: 1 h, 4 h, or "tomorrow" (the next
// 06:00 in now's location).
func PauseFor(now time.Time, choice string) (time.Time, error) {
	switch choice {
	case "1h":
		return now.Add(time.Hour), nil
	case "4h":
		return now.Add(4 * time.Hour), nil
	case "tomorrow":
		y, m, d := now.Date()
		t := time.Date(y, m, d, 6, 0, 0, 0, now.Location())
		if !t.After(now) {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("pause for %q: want 1h, 4h or tomorrow", choice)
}

// State is the governor's decision: whether the worker may run, why not (every pause has
// a reason), and the share of time it may work.
type State struct {
	Run    bool      `json:"run"`
	Reason string    `json:"reason,omitempty"`
	Duty   float64   `json:"duty"` // 1 = all the time
	GPUs   []GPU     `json:"gpus,omitempty"`
	Since  time.Time `json:"since"`
	// TelemetryError says why the GPUs could not be read (no driver: the CPU is shared).
	TelemetryError string `json:"telemetry_error,omitempty"`
}

// GovernorOptions configure a Governor.
type GovernorOptions struct {
	Preferences Preferences
	Telemetry   Telemetry // nil: no GPUs (the CPU is shared)
	Desktop     Desktop   // nil: the OS tells nothing
	Interval    time.Duration
	Now         func() time.Time
	// OnChange is called when the decision changes.
	OnChange func(State)
}

// Governor decides, from the telemetry, the desktop and the preferences, whether the
// worker may use the machine now. It is safe for concurrent use.
type Governor struct {
	o GovernorOptions

	mu       sync.Mutex
	prefs    Preferences
	state    State
	resume   chan struct{} // closed when the state turns to running
	busySeen time.Time     // the last time a selected card had other programs on it
	hot      map[int]bool  // cards paused for temperature, until they cool down
	duty     float64
	poke     chan struct{}
}

// NewGovernor returns a governor; call Serve to keep it current. Until the first
// evaluation it says run.
func NewGovernor(o GovernorOptions) *Governor {
	if o.Interval <= 0 {
		o.Interval = DefaultPollInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Preferences.IdleGrace == 0 {
		o.Preferences.IdleGrace = DefaultIdleGrace
	}
	if o.Preferences.ActiveGrace == 0 {
		o.Preferences.ActiveGrace = DefaultActiveGrace
	}
	g := &Governor{o: o, prefs: o.Preferences, hot: map[int]bool{}, duty: 1, resume: make(chan struct{}), poke: make(chan struct{}, 1)}
	g.state = State{Run: true, Duty: 1, Since: o.Now()}
	close(g.resume)
	return g
}

// Serve evaluates every Interval (and at once after a change of preferences) until ctx ends.
func (g *Governor) Serve(ctx context.Context) error {
	t := time.NewTicker(g.o.Interval)
	defer t.Stop()
	for {
		g.Evaluate(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-g.poke:
		}
	}
}

// Preferences returns the preferences in force.
func (g *Governor) Preferences() Preferences {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prefs
}

// SetPreferences replaces the preferences; the next evaluation follows them.
func (g *Governor) SetPreferences(p Preferences) {
	g.mu.Lock()
	if p.IdleGrace == 0 {
		p.IdleGrace = DefaultIdleGrace
	}
	if p.ActiveGrace == 0 {
		p.ActiveGrace = DefaultActiveGrace
	}
	g.prefs = p
	g.mu.Unlock()
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// State returns the last decision.
func (g *Governor) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Wait blocks while the governor says pause, until ctx ends.
func (g *Governor) Wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.resume
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Evaluate reads the telemetry and the desktop once and updates the decision.
func (g *Governor) Evaluate(ctx context.Context) State {
	var gpus []GPU
	var terr error
	if g.o.Telemetry != nil {
		gpus, terr = g.o.Telemetry.GPUs(ctx)
	}
	var desk DesktopState
	if g.o.Desktop != nil {
		desk = g.o.Desktop.State(ctx)
	}
	now := g.o.Now()
	g.mu.Lock()
	s := g.decide(now, gpus, desk)
	if terr != nil {
		s.TelemetryError = terr.Error()
	}
	changed := s.Run != g.state.Run || s.Reason != g.state.Reason
	if changed {
		s.Since = now
	} else {
		s.Since = g.state.Since
	}
	if s.Run && !g.state.Run {
		close(g.resume)
	} else if !s.Run && g.state.Run {
		g.resume = make(chan struct{})
	}
	g.state = s
	g.mu.Unlock()
	if changed && g.o.OnChange != nil {
		g.o.OnChange(s)
	}
	return s
}

// decide applies the preferences in order; the first that pauses gives the reason.
// g.mu must be held.
func (g *Governor) decide(now time.Time, gpus []GPU, desk DesktopState) State {
	p := g.prefs
	pause := func(format string, args ...any) State {
		return State{Run: false, Reason: fmt.Sprintf(format, args...), Duty: 0, GPUs: gpus}
	}
	if p.Paused {
		return pause("paused by you (Pause sharing)")
	}
	if now.Before(p.PauseUntil) {
		return pause("paused by you until %s", p.PauseUntil.Format("Mon 15:04"))
	}
	if len(p.Schedule) > 0 {
		y, m, d := now.Date()
		tod := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, now.Location()))
		in := slices.ContainsFunc(p.Schedule, func(w Window) bool { return w.contains(tod) })
		if !in {
			ws := make([]string, len(p.Schedule))
			for i, w := range p.Schedule {
				ws[i] = w.String()
			}
			return pause("outside the schedule (%s)", strings.Join(ws, ", "))
		}
	}
	if p.SuspendOnBattery && desk.BatteryKnown && desk.OnBattery {
		return pause("running on battery")
	}
	if p.SuspendWhenActive && desk.IdleKnown && desk.UserIdle < p.ActiveGrace {
		return pause("you are using the computer")
	}
	if p.SuspendFullscreen && desk.FullscreenKnown && desk.Fullscreen {
		return pause("a fullscreen program is running")
	}
	var sel []GPU
	for _, c := range gpus {
		if len(p.GPUs) == 0 || slices.Contains(p.GPUs, c.Index) {
			sel = append(sel, c)
		}
	}
	if len(p.GPUs) > 0 && len(gpus) > 0 && len(sel) == 0 {
		return pause("none of the chosen GPUs (%v) is present", p.GPUs)
	}
	if p.RequireIdle {
		for _, c := range sel {
			if c.OtherProcesses > 0 {
				g.busySeen = now
				return pause("GPU %d is in use by %d other program(s)", c.Index, c.OtherProcesses)
			}
		}
		if !g.busySeen.IsZero() {
			if left := p.IdleGrace - now.Sub(g.busySeen); left > 0 {
				return pause("waiting until the GPU has been free of other programs for %s (%s left)", p.IdleGrace, left.Round(time.Second))
			}
		}
	}
	duty := g.duty
	reason := ""
	if p.MaxTempC > 0 {
		for _, c := range sel {
			switch {
			case c.TempC >= p.MaxTempC || (g.hot[c.Index] && c.TempC > p.MaxTempC-3):
				g.hot[c.Index] = true
				return pause("GPU %d at %.0f °C, at or over the %.0f °C limit", c.Index, c.TempC, p.MaxTempC)
			default:
				delete(g.hot, c.Index)
			}
			if c.TempC > p.MaxTempC-5 {
				d := max(minDuty, (p.MaxTempC-c.TempC)/5)
				if d < duty {
					duty, reason = d, fmt.Sprintf("slowed to %.0f%% near the %.0f °C limit", d*100, p.MaxTempC)
				}
			}
		}
	}
	if p.MaxPowerW > 0 {
		// The card drawing the most sets the pace: its draw scales with the share of time
		// worked, so the duty moves by the ratio of the limit to the draw.
		var top float64
		for _, c := range sel {
			top = max(top, c.PowerW)
		}
		switch {
		case top > p.MaxPowerW:
			g.duty = max(minDuty, g.duty*p.MaxPowerW/top)
		case top > 0 && top < 0.9*p.MaxPowerW:
			g.duty = min(1, g.duty*1.1)
		}
		if g.duty < duty {
			duty = g.duty
			reason = fmt.Sprintf("slowed to %.0f%% to stay under %.0f W", duty*100, p.MaxPowerW)
		}
	} else {
		g.duty = 1
	}
	return State{Run: true, Reason: reason, Duty: duty, GPUs: gpus}
}
