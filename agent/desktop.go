package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
)

// SystemDesktop asks the operating system what it tells without a window system
// connection: on Linux, whether the machine runs on battery (/sys/class/power_supply).
// Keyboard idle time and fullscreen programs are not known there, so those preferences
// have no effect on it.
type SystemDesktop struct {
	// Root is where the power supply folder is looked up ("" is /sys/class/power_supply).
	Root string
}

// State reads the power supplies.
func (d SystemDesktop) State(ctx context.Context) DesktopState {
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
