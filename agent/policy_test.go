package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeTelemetry struct{ gpus []GPU }

func (f *fakeTelemetry) GPUs(ctx context.Context) ([]GPU, error) { return f.gpus, nil }

type fakeDesktop struct{ s DesktopState }

func (f fakeDesktop) State(ctx context.Context) DesktopState { return f.s }

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{"22:00-07:00", "22:00-07:00", false},
		{"09:30-12:00, 13:00-17:45", "09:30-12:00,13:00-17:45", false},
		{"22:00", "", true},
		{"25:00-07:00", "", true},
		{"ab-cd", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ws, err := ParseSchedule(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSchedule(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			var s []string
			for _, w := range ws {
				s = append(s, w.String())
			}
			if got := strings.Join(s, ","); got != tt.want {
				t.Errorf("ParseSchedule(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestPauseFor(t *testing.T) {
	now := time.Date(2026, 3, 10, 23, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		choice string
		want   time.Time
	}{
		{"1h", now.Add(time.Hour)},
		{"4h", now.Add(4 * time.Hour)},
		{"tomorrow", time.Date(2026, 3, 11, 6, 0, 0, 0, time.UTC)},
	} {
		got, err := PauseFor(now, tt.choice)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("PauseFor(%s) = %v, %v; want %v", tt.choice, got, err, tt.want)
		}
	}
	early := time.Date(2026, 3, 10, 2, 0, 0, 0, time.UTC)
	if got, _ := PauseFor(early, "tomorrow"); !got.Equal(time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("PauseFor(tomorrow) at 02:00 = %v, want 06:00 the same day", got)
	}
	if _, err := PauseFor(now, "2d"); err == nil {
		t.Error("PauseFor(2d) accepted")
	}
}

// TestGovernorDecides checks each preference alone: whether it pauses, with which reason,
// and the duty cycle it leaves.
func TestGovernorDecides(t *testing.T) {
	noon := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	night, _ := ParseSchedule("22:00-07:00")
	gpu := func(temp, power float64, others int) []GPU {
		return []GPU{{Index: 0, Name: "Fake", TempC: temp, PowerW: power, OtherProcesses: others}, {Index: 1, Name: "Fake 2", TempC: 40}}
	}
	tests := []struct {
		name   string
		prefs  Preferences
		gpus   []GPU
		desk   DesktopState
		run    bool
		reason string // a part of it
		duty   float64
	}{
		{"nothing set", Preferences{}, gpu(60, 100, 0), DesktopState{}, true, "", 1},
		{"no GPU (CPU shared)", Preferences{RequireIdle: true, MaxTempC: 80}, nil, DesktopState{}, true, "", 1},
		{"paused from the window", Preferences{Paused: true}, gpu(60, 100, 0), DesktopState{}, false, "paused by you (Pause sharing)", 0},
		{"paused by the user", Preferences{PauseUntil: noon.Add(time.Hour)}, gpu(60, 100, 0), DesktopState{}, false, "paused by you until", 0},
		{"pause over", Preferences{PauseUntil: noon.Add(-time.Minute)}, gpu(60, 100, 0), DesktopState{}, true, "", 1},
		{"outside the schedule", Preferences{Schedule: night}, gpu(60, 100, 0), DesktopState{}, false, "outside the schedule (22:00-07:00)", 0},
		{"on battery", Preferences{SuspendOnBattery: true}, gpu(60, 100, 0), DesktopState{BatteryKnown: true, OnBattery: true}, false, "battery", 0},
		{"battery unknown", Preferences{SuspendOnBattery: true}, gpu(60, 100, 0), DesktopState{}, true, "", 1},
		{"user active", Preferences{SuspendWhenActive: true, ActiveGrace: time.Minute}, gpu(60, 100, 0), DesktopState{IdleKnown: true, UserIdle: time.Second}, false, "using the computer", 0},
		{"user away", Preferences{SuspendWhenActive: true, ActiveGrace: time.Minute}, gpu(60, 100, 0), DesktopState{IdleKnown: true, UserIdle: time.Hour}, true, "", 1},
		{"fullscreen", Preferences{SuspendFullscreen: true}, gpu(60, 100, 0), DesktopState{FullscreenKnown: true, Fullscreen: true}, false, "fullscreen", 0},
		{"GPU busy", Preferences{RequireIdle: true}, gpu(60, 100, 2), DesktopState{}, false, "GPU 0 is in use by 2 other program(s)", 0},
		{"other GPU busy, not chosen", Preferences{RequireIdle: true, GPUs: []int{1}}, gpu(60, 100, 2), DesktopState{}, true, "", 1},
		{"chosen GPU absent", Preferences{GPUs: []int{5}}, gpu(60, 100, 0), DesktopState{}, false, "none of the chosen GPUs", 0},
		{"too hot", Preferences{MaxTempC: 80}, gpu(81, 100, 0), DesktopState{}, false, "GPU 0 at 81 °C", 0},
		{"near the temperature limit", Preferences{MaxTempC: 80}, gpu(78, 100, 0), DesktopState{}, true, "near the 80 °C limit", 0.4},
		{"over the power limit", Preferences{MaxPowerW: 200}, gpu(60, 400, 0), DesktopState{}, true, "under 200 W", 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGovernor(GovernorOptions{Preferences: tt.prefs, Telemetry: &fakeTelemetry{tt.gpus}, Desktop: fakeDesktop{tt.desk},
				Now: func() time.Time { return noon }})
			s := g.Evaluate(context.Background())
			if s.Run != tt.run || !strings.Contains(s.Reason, tt.reason) || (tt.reason == "" && s.Reason != "") {
				t.Errorf("Evaluate = run %v reason %q, want run %v reason containing %q", s.Run, s.Reason, tt.run, tt.reason)
			}
			if d := s.Duty - tt.duty; d > 1e-9 || d < -1e-9 {
				t.Errorf("duty %v, want %v", s.Duty, tt.duty)
			}
			if !s.Run && s.Reason == "" {
				t.Error("a pause without a reason")
			}
		})
	}
}

// TestGovernorHysteresisAndGrace: a hot card stays paused until 3 °C under the limit; a
// card freed of other programs waits for the grace period; Wait blocks while paused.
func TestGovernorHysteresisAndGrace(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tel := &fakeTelemetry{}
	g := NewGovernor(GovernorOptions{Preferences: Preferences{MaxTempC: 80, RequireIdle: true, IdleGrace: 30 * time.Second},
		Telemetry: tel, Now: func() time.Time { return now }})
	step := func(temp float64, others int, want bool) {
		t.Helper()
		tel.gpus = []GPU{{Index: 0, TempC: temp, OtherProcesses: others}}
		if s := g.Evaluate(context.Background()); s.Run != want {
			t.Fatalf("at %v °C, %d others, %s: run %v (%s), want %v", temp, others, now.Format("15:04:05"), s.Run, s.Reason, want)
		}
	}
	step(70, 0, true)
	step(82, 0, false)
	step(78, 0, false) // still within 3 °C of the limit
	step(76, 0, true)
	step(70, 1, false)
	now = now.Add(10 * time.Second)
	step(70, 0, false) // free, but not for the grace period yet
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := g.Wait(ctx); err == nil {
		t.Error("Wait returned while paused")
	}
	cancel()
	now = now.Add(25 * time.Second)
	step(70, 0, true)
	if err := g.Wait(context.Background()); err != nil {
		t.Errorf("Wait while running: %v", err)
	}
}

// TestOpenNVMLWithoutDriver: on a machine without the NVIDIA driver (this one, and CI's)
// OpenNVML fails with an error and the process goes on.
func TestOpenNVMLWithoutDriver(t *testing.T) {
	n, err := OpenNVML()
	if err != nil {
		t.Logf("OpenNVML: %v (the CPU is shared)", err)
		return
	}
	defer n.Close()
	gpus, err := n.GPUs(context.Background())
	if err != nil {
		t.Fatalf("GPUs: %v", err)
	}
	t.Logf("NVML found %d GPU(s): %+v", len(gpus), gpus)
}

func TestSystemDesktopBattery(t *testing.T) {
	root := t.TempDir()
	write := func(dev, typ, online string) {
		d := filepath.Join(root, dev)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "type"), []byte(typ+"\n"), 0o644)
		if online != "" {
			os.WriteFile(filepath.Join(d, "online"), []byte(online+"\n"), 0o644)
		}
	}
	if s := (&SystemDesktop{Root: root, Display: "-", Bus: "-"}).State(context.Background()); s.BatteryKnown {
		t.Errorf("no power supplies: %+v, want unknown", s)
	}
	write("AC", "Mains", "1")
	write("BAT0", "Battery", "")
	if s := (&SystemDesktop{Root: root, Display: "-", Bus: "-"}).State(context.Background()); !s.BatteryKnown || s.OnBattery {
		t.Errorf("on mains: %+v", s)
	}
	write("AC", "Mains", "0")
	if s := (&SystemDesktop{Root: root, Display: "-", Bus: "-"}).State(context.Background()); !s.BatteryKnown || !s.OnBattery {
		t.Errorf("on battery: %+v", s)
	}
}
