package settings

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
)

// fakeCore keeps settings in a map and records what the page asks of it.
type fakeCore struct {
	settings  []core.Setting
	updates   []map[string]string
	updateErr error
	jobs      []core.JobInfo
	cancelled []string
	started   int
}

func newFake() *fakeCore {
	spec := func(key, label string, kind core.SettingKind, value string) core.Setting {
		return core.Setting{SettingSpec: core.SettingSpec{Key: key, Label: label, Kind: kind, Help: label + " help"}, Value: value}
	}
	dir := spec(core.SettingDataDir, "Data folder", core.KindText, "/data/gata")
	dir.ReadOnly = true
	addr := spec(core.SettingWebAddr, "Web UI address", core.KindText, "127.0.0.1:7800")
	addr.Restart = true
	th := spec(core.SettingTheme, "Theme", core.KindChoice, "system")
	th.Choices = []string{"system", "light", "dark"}
	paused := spec(core.SettingSharePaused, "Pause sharing", core.KindBool, "false")
	return &fakeCore{settings: []core.Setting{dir, addr, th, paused}}
}

func (f *fakeCore) Info() core.Info {
	return core.Info{Version: "0.0.0-test", OS: "testos", Arch: "testarch"}
}
func (f *fakeCore) Settings(context.Context) ([]core.Setting, error) {
	return slices.Clone(f.settings), nil
}
func (f *fakeCore) UpdateSettings(_ context.Context, kv map[string]string) ([]core.Setting, error) {
	f.updates = append(f.updates, maps.Clone(kv))
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	for i, s := range f.settings {
		if v, ok := kv[s.Key]; ok {
			f.settings[i].Value = v
		}
	}
	return slices.Clone(f.settings), nil
}
func (f *fakeCore) StartDataCheck() (core.JobInfo, error) {
	f.started++
	j := core.JobInfo{ID: "check1", Kind: "check", Title: "Checking", State: core.JobRunning, Started: time.Unix(100, 0)}
	f.jobs = append(f.jobs, j)
	return j, nil
}
func (f *fakeCore) ListJobs() []core.JobInfo { return slices.Clone(f.jobs) }
func (f *fakeCore) CancelJob(id string) error {
	f.cancelled = append(f.cancelled, id)
	return nil
}

func TestFormControlsFollowTheKinds(t *testing.T) {
	test.NewTempApp(t)
	s := New(context.Background(), testSection, newFake())
	tests := []struct {
		key  string
		want string
	}{
		{core.SettingDataDir, "label"},
		{core.SettingWebAddr, "entry"},
		{core.SettingTheme, "select"},
		{core.SettingSharePaused, "check"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			f := s.field(tt.key)
			if f == nil {
				t.Fatalf("no field for %s", tt.key)
			}
			var got string
			switch {
			case f.text != nil:
				got = "label"
			case f.entry != nil:
				got = "entry"
			case f.sel != nil:
				got = "select"
			case f.check != nil:
				got = "check"
			}
			if got != tt.want {
				t.Errorf("control of %s = %s, want %s", tt.key, got, tt.want)
			}
			if f.value() != f.s.Value {
				t.Errorf("control of %s shows %q, want %q", tt.key, f.value(), f.s.Value)
			}
		})
	}
}

func TestSaveSendsOnlyChanges(t *testing.T) {
	test.NewTempApp(t)
	fc := newFake()
	s := New(context.Background(), testSection, fc)
	test.Tap(s.saveBtn)
	if len(fc.updates) != 0 || s.status.Text != "No changes to save." {
		t.Errorf("Save without changes: updates %v, status %q", fc.updates, s.status.Text)
	}
	s.field(core.SettingTheme).sel.SetSelected("dark")
	test.Tap(s.field(core.SettingSharePaused).check)
	test.Tap(s.saveBtn)
	want := map[string]string{core.SettingTheme: "dark", core.SettingSharePaused: "true"}
	if len(fc.updates) != 1 || !maps.Equal(fc.updates[0], want) {
		t.Errorf("UpdateSettings calls = %v, want one with %v", fc.updates, want)
	}
	if s.status.Text != "Saved." {
		t.Errorf("status = %q, want Saved.", s.status.Text)
	}
}

func TestSaveErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantField  string // the error shown by the web address field
		wantStatus string
	}{
		{name: "field", err: &core.FieldError{Key: core.SettingWebAddr, Reason: "bad port"},
			wantField: "bad port", wantStatus: "Nothing was saved: Web UI address needs a different value."},
		{name: "unknown field", err: &core.FieldError{Key: "x.y", Reason: "unknown setting"},
			wantStatus: "Nothing was saved: setting x.y: unknown setting"},
		{name: "store", err: errors.New("save settings: disk full"),
			wantStatus: "Could not save: save settings: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			test.NewTempApp(t)
			fc := newFake()
			fc.updateErr = tt.err
			s := New(context.Background(), testSection, fc)
			addr := s.field(core.SettingWebAddr)
			addr.entry.SetText("127.0.0.1:99999")
			test.Tap(s.saveBtn)
			if addr.errLbl.Text != tt.wantField || addr.errLbl.Visible() != (tt.wantField != "") {
				t.Errorf("field error = %q (visible %v), want %q", addr.errLbl.Text, addr.errLbl.Visible(), tt.wantField)
			}
			if s.status.Text != tt.wantStatus || s.status.Importance != widget.DangerImportance {
				t.Errorf("status = %q (importance %v), want %q as danger", s.status.Text, s.status.Importance, tt.wantStatus)
			}
			if addr.s.Value != "127.0.0.1:7800" || addr.entry.Text != "127.0.0.1:99999" {
				t.Errorf("after a refused save: stored %q, typed %q", addr.s.Value, addr.entry.Text)
			}
		})
	}
}

func TestCheckProgressAndReport(t *testing.T) {
	test.NewTempApp(t)
	fc := newFake()
	s := New(context.Background(), testSection, fc)
	test.Tap(s.checkBtn)
	if fc.started != 1 || !s.checkBtn.Disabled() || !s.checkBar.Visible() {
		t.Fatalf("after Check: started %d, button disabled %v, bar visible %v", fc.started, s.checkBtn.Disabled(), s.checkBar.Visible())
	}
	j := fc.jobs[0]
	j.Progress = core.Progress{Done: 2, Total: 4, Unit: "steps", Message: "Free disk space"}
	s.ApplyJob(j)
	if s.checkBar.Value != 0.5 || s.checkMsg.Text != "2 of 4 steps: Free disk space" {
		t.Errorf("progress shown as %v %q", s.checkBar.Value, s.checkMsg.Text)
	}
	j.State = core.JobFailed
	j.Error = "data check found problems: Data folder: not writable"
	j.Progress.Done = 4
	j.Result = core.CheckReport{Items: []core.CheckItem{
		{Name: "Data folder", Status: core.CheckFail, Detail: "not writable"},
		{Name: "Free disk space", Status: core.CheckWarn, Detail: "1.0 GiB free"},
		{Name: "Database schema", Status: core.CheckOK, Detail: "schema version 2"},
	}}
	j.Finished = time.Unix(200, 0)
	s.ApplyJob(j)
	if s.checkBtn.Disabled() || s.checkBar.Value != 1 {
		t.Errorf("after the end: button disabled %v, bar %v", s.checkBtn.Disabled(), s.checkBar.Value)
	}
	if s.checkMsg.Text != j.Error || s.checkMsg.Importance != widget.DangerImportance {
		t.Errorf("message = %q, want the job's error as danger", s.checkMsg.Text)
	}
	if n := len(s.report.Objects) / 2; n != 3 { // two cells a row
		t.Fatalf("report rows = %d, want 3", n)
	}
	var shown []string
	var icons []string
	for _, o := range test.LaidOutObjects(s.report) {
		switch x := o.(type) {
		case *widget.Label:
			shown = append(shown, x.Text)
		case *widget.Icon:
			switch r := x.Resource.(type) {
			case *theme.ThemedResource:
				icons = append(icons, string(r.ColorName))
			case *theme.ErrorThemedResource:
				icons = append(icons, "error")
			default:
				icons = append(icons, fmt.Sprintf("%T", r))
			}
		}
	}
	for _, it := range j.Result.(core.CheckReport).Items {
		if !slices.Contains(shown, it.Name) || !slices.Contains(shown, it.Detail) {
			t.Errorf("report does not show %q / %q; labels %q", it.Name, it.Detail, shown)
		}
	}
	wantIcons := []string{"error", string(theme.ColorNameWarning), string(theme.ColorNameSuccess)}
	if !slices.Equal(icons, wantIcons) {
		t.Errorf("report icons = %q, want %q", icons, wantIcons)
	}
}

func TestJobsListCancel(t *testing.T) {
	test.NewTempApp(t)
	fc := newFake()
	fc.jobs = []core.JobInfo{
		{ID: "old", Title: "Old job", State: core.JobDone, Started: time.Unix(10, 0), Finished: time.Unix(20, 0)},
		{ID: "run", Title: "Running job", State: core.JobRunning, Started: time.Unix(30, 0),
			Progress: core.Progress{Done: 1, Total: 2, Unit: "items"}},
	}
	s := New(context.Background(), testSection, fc)
	if n := len(s.jobBox.Objects); n != 2 {
		t.Fatalf("jobs list rows = %d, want 2", n)
	}
	markup := test.RenderObjectToMarkup(s.jobBox)
	if i, k := strings.Index(markup, "Running job"), strings.Index(markup, "Old job"); i < 0 || k < 0 || i > k {
		t.Errorf("jobs list not newest first: Running at %d, Old at %d", i, k)
	}
	var cancel *widget.Button
	for _, o := range test.LaidOutObjects(s.jobBox) {
		if b, ok := o.(*widget.Button); ok && b.Text == CancelLabel {
			if cancel != nil {
				t.Fatal("more than one Cancel button; only the running job has one")
			}
			cancel = b
		}
	}
	if cancel == nil {
		t.Fatal("no Cancel button for the running job")
	}
	test.Tap(cancel)
	if !slices.Equal(fc.cancelled, []string{"run"}) {
		t.Errorf("CancelJob calls = %v, want [run]", fc.cancelled)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

var testSection = core.Section{ID: "settings", Title: "Settings", Summary: "Where things are."}
