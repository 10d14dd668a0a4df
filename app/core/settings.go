package core

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/gata-contrib/gata/dva/models"
)

// SettingKind tells a UI which control to draw.
type SettingKind string

// Setting kinds.
const (
	KindText   SettingKind = "text"
	KindChoice SettingKind = "choice"
	KindBool   SettingKind = "bool"
)

// SettingSpec describes one user setting: its default, how to edit it, how to check it.
type SettingSpec struct {
	Key      string      `json:"key"`
	Label    string      `json:"label"`
	Help     string      `json:"help"`
	Kind     SettingKind `json:"kind"`
	Choices  []string    `json:"choices,omitempty"`
	Default  string      `json:"default"`
	ReadOnly bool        `json:"read_only,omitempty"`
	Restart  bool        `json:"restart,omitempty"` // takes effect after a restart
	validate func(string) error
}

// Setting is a spec with its current value.
type Setting struct {
	SettingSpec
	Value string `json:"value"`
}

// Setting keys.
const (
	SettingDataDir     = "data.dir"
	SettingWebAddr     = "web.addr"
	SettingTheme       = "ui.theme"
	SettingLogLevel    = "log.level"
	SettingSharePaused = "share.paused"
	SettingModel       = "validate.model"
)

// DefaultWebAddr is where the local web UI listens unless told otherwise.
const DefaultWebAddr = "127.0.0.1:7800"

func settingSpecs() []SettingSpec {
	return []SettingSpec{
		{Key: SettingDataDir, Label: "Data folder", Kind: KindText, ReadOnly: true,
			Help: "Where the database, models, exports and logs live. Change it with --data-dir or GATA_DATA_DIR."},
		{Key: SettingWebAddr, Label: "Web UI address", Kind: KindText, Default: DefaultWebAddr, Restart: true,
			Help:     "host:port of the local web UI. A non-loopback address also needs a password and TLS.",
			validate: validateAddr},
		{Key: SettingTheme, Label: "Theme", Kind: KindChoice, Choices: []string{"system", "light", "dark"}, Default: "system",
			Help: "Colours of the window and the web UI."},
		{Key: SettingLogLevel, Label: "Log level", Kind: KindChoice, Choices: []string{"debug", "info", "warn", "error"}, Default: "info",
			Help: "How much the app writes to its log file and the terminal."},
		{Key: SettingModel, Label: "Validation model", Kind: KindText, Default: models.DefaultModel,
			Help: "The CLIP model that scores pairs: a known model's name (" + models.DefaultModel + ") or the path of a model folder with open_clip_config.json and its weights."},
		{Key: SettingChatQualityMin, Label: "Chat quality floor", Kind: KindText, Default: defaultQualityMin, validate: validateQualityMin,
			Help: "Battles whose quality score (0 to 1) is below this stay on this computer: they are left out of exports, submissions and the leaderboard."},
		{Key: SettingSharePaused, Label: "Pause sharing", Kind: KindBool, Default: "false",
			Help: "Stop donating GPU time until you turn this off again."},
	}
}

func validateAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q must be an IP address or localhost", host)
	}
	return nil
}

// SettingsStore keeps settings the user changed; storage.Store satisfies it.
type SettingsStore interface {
	Settings(ctx context.Context) (map[string]string, error)
	SetSettings(ctx context.Context, kv map[string]string) error
}

// FieldError says which setting was refused and why; it is safe to show.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("setting %s: %s", e.Key, e.Reason) }

// Settings returns every setting with its current value, in display order.
func (c *Core) Settings(ctx context.Context) ([]Setting, error) {
	stored, err := c.store.Settings(ctx)
	if err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	var out []Setting
	for _, s := range c.specs {
		v, ok := stored[s.Key]
		if !ok {
			v = s.Default
		}
		if s.Key == SettingDataDir {
			v = c.opts.DataDir
		}
		out = append(out, Setting{SettingSpec: s, Value: v})
	}
	return out, nil
}

// SettingValue returns one setting's current value.
func (c *Core) SettingValue(ctx context.Context, key string) (string, error) {
	all, err := c.Settings(ctx)
	if err != nil {
		return "", err
	}
	for _, s := range all {
		if s.Key == key {
			return s.Value, nil
		}
	}
	return "", &FieldError{Key: key, Reason: "unknown setting"}
}

// UpdateSettings checks every given value and stores them all, or none. It applies what
// can change at once (log level) and publishes a settings event.
func (c *Core) UpdateSettings(ctx context.Context, kv map[string]string) ([]Setting, error) {
	clean := map[string]string{}
	for k, v := range kv {
		i := slices.IndexFunc(c.specs, func(s SettingSpec) bool { return s.Key == k })
		if i < 0 {
			return nil, &FieldError{Key: k, Reason: "unknown setting"}
		}
		s := c.specs[i]
		v = strings.TrimSpace(v)
		if s.ReadOnly {
			return nil, &FieldError{Key: k, Reason: "read-only"}
		}
		switch s.Kind {
		case KindChoice:
			if !slices.Contains(s.Choices, v) {
				return nil, &FieldError{Key: k, Reason: fmt.Sprintf("%q is not one of %s", v, strings.Join(s.Choices, ", "))}
			}
		case KindBool:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, &FieldError{Key: k, Reason: fmt.Sprintf("%q is not true or false", v)}
			}
			v = strconv.FormatBool(b)
		}
		if s.validate != nil {
			if err := s.validate(v); err != nil {
				return nil, &FieldError{Key: k, Reason: err.Error()}
			}
		}
		clean[k] = v
	}
	if len(clean) == 0 {
		return c.Settings(ctx)
	}
	if err := c.store.SetSettings(ctx, clean); err != nil {
		return nil, fmt.Errorf("save settings: %w", err)
	}
	if lv, ok := clean[SettingLogLevel]; ok && c.opts.LogLevel != nil {
		c.opts.LogLevel.Set(ParseLogLevel(lv))
	}
	all, err := c.Settings(ctx)
	if err != nil {
		return nil, err
	}
	var changed []Setting
	for _, s := range all {
		if _, ok := clean[s.Key]; ok {
			changed = append(changed, s)
		}
	}
	c.log.Info("settings changed", "keys", slices.Sorted(maps.Keys(clean)))
	c.bus.publish(EventSettings, changed)
	return all, nil
}

// ParseLogLevel maps debug/info/warn/error to a slog level (info for anything else).
func ParseLogLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// SharingPaused reports whether the user paused GPU sharing.
func (c *Core) SharingPaused(ctx context.Context) bool {
	v, err := c.SettingValue(ctx, SettingSharePaused)
	return err == nil && v == "true"
}

// SetSharingPaused pauses or resumes GPU sharing (the tray menu's "Pause sharing").
func (c *Core) SetSharingPaused(ctx context.Context, paused bool) error {
	_, err := c.UpdateSettings(ctx, map[string]string{SettingSharePaused: strconv.FormatBool(paused)})
	return err
}
