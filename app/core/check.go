package core

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CheckStatus grades one finding of the data check.
type CheckStatus string

// Check statuses.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// CheckItem is one finding of the data check.
type CheckItem struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
}

// CheckReport is the result of the data check job.
type CheckReport struct {
	Items []CheckItem `json:"items"`
}

// Failed lists the items that failed.
func (r CheckReport) Failed() []CheckItem {
	var out []CheckItem
	for _, it := range r.Items {
		if it.Status == CheckFail {
			out = append(out, it)
		}
	}
	return out
}

// Subfolders of the data dir (DESIGN §3).
var dataSubdirs = []string{"models", "exports", "logs"}

// lowDiskBytes is the free space below which the check warns.
const lowDiskBytes = 2 << 30

// StartDataCheck starts the job that checks the data folder and the database: the folder
// and its subfolders exist and are writable, there is free disk space, the database passes
// SQLite's quick check and has the schema this app expects, and what the models folder holds.
func (c *Core) StartDataCheck() (JobInfo, error) {
	return c.jobs.Start(JobSpec{Kind: "check", Title: "Checking the data folder and database", Run: c.runDataCheck})
}

func (c *Core) runDataCheck(ctx context.Context, report func(Progress)) (any, error) {
	steps := []struct {
		name string
		fn   func(ctx context.Context) CheckItem
	}{
		{"Data folder", c.checkDataDir},
		{"Subfolders", c.checkSubdirs},
		{"Free disk space", c.checkDisk},
		{"Database integrity", c.checkDBIntegrity},
		{"Database schema", c.checkSchema},
		{"Models folder", c.checkModels},
	}
	var rep CheckReport
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		report(Progress{Done: int64(i), Total: int64(len(steps)), Unit: "steps", Message: s.name})
		it := s.fn(ctx)
		it.Name = s.name
		rep.Items = append(rep.Items, it)
	}
	report(Progress{Done: int64(len(steps)), Total: int64(len(steps)), Unit: "steps", Message: "finished"})
	if f := rep.Failed(); len(f) > 0 {
		var parts []string
		for _, it := range f {
			parts = append(parts, it.Name+": "+it.Detail)
		}
		return rep, fmt.Errorf("data check found problems: %s", strings.Join(parts, "; "))
	}
	return rep, nil
}

func (c *Core) checkDataDir(context.Context) CheckItem {
	dir := c.opts.DataDir
	st, err := os.Stat(dir)
	if err != nil {
		return CheckItem{Status: CheckFail, Detail: err.Error()}
	}
	if !st.IsDir() {
		return CheckItem{Status: CheckFail, Detail: dir + " is not a folder"}
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return CheckItem{Status: CheckFail, Detail: "not writable: " + err.Error()}
	}
	name := f.Name()
	_, werr := f.WriteString("gata")
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if werr != nil || serr != nil {
		return CheckItem{Status: CheckFail, Detail: fmt.Sprintf("write failed: %v %v", werr, serr)}
	}
	return CheckItem{Status: CheckOK, Detail: dir + " is writable"}
}

func (c *Core) checkSubdirs(context.Context) CheckItem {
	var made []string
	for _, d := range dataSubdirs {
		p := filepath.Join(c.opts.DataDir, d)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.MkdirAll(p, 0o700); err != nil {
			return CheckItem{Status: CheckFail, Detail: fmt.Sprintf("create %s: %v", d, err)}
		}
		made = append(made, d)
	}
	if len(made) > 0 {
		return CheckItem{Status: CheckOK, Detail: "created " + strings.Join(made, ", ")}
	}
	return CheckItem{Status: CheckOK, Detail: strings.Join(dataSubdirs, ", ") + " present"}
}

func (c *Core) checkDisk(context.Context) CheckItem {
	free, err := freeBytes(c.opts.DataDir)
	if err != nil {
		return CheckItem{Status: CheckWarn, Detail: "cannot tell: " + err.Error()}
	}
	d := HumanBytes(free) + " free"
	if free < lowDiskBytes {
		return CheckItem{Status: CheckWarn, Detail: d + " (models and datasets need several GB)"}
	}
	return CheckItem{Status: CheckOK, Detail: d}
}

func (c *Core) checkDBIntegrity(ctx context.Context) CheckItem {
	lines, err := c.store.IntegrityCheck(ctx)
	if err != nil {
		return CheckItem{Status: CheckFail, Detail: err.Error()}
	}
	if len(lines) == 1 && lines[0] == "ok" {
		return CheckItem{Status: CheckOK, Detail: "quick check ok"}
	}
	if len(lines) > 3 {
		lines = append(lines[:3], fmt.Sprintf("and %d more", len(lines)-3))
	}
	return CheckItem{Status: CheckFail, Detail: strings.Join(lines, "; ")}
}

func (c *Core) checkSchema(ctx context.Context) CheckItem {
	v, err := c.store.SchemaVersion(ctx)
	if err != nil {
		return CheckItem{Status: CheckFail, Detail: err.Error()}
	}
	want := c.store.LatestSchemaVersion()
	if v != want {
		return CheckItem{Status: CheckFail, Detail: fmt.Sprintf("schema version %d, this app expects %d", v, want)}
	}
	return CheckItem{Status: CheckOK, Detail: fmt.Sprintf("schema version %d", v)}
}

func (c *Core) checkModels(ctx context.Context) CheckItem {
	root := filepath.Join(c.opts.DataDir, "models")
	var n int
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n++
				size += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return CheckItem{Status: CheckWarn, Detail: err.Error()}
	}
	if n == 0 {
		return CheckItem{Status: CheckOK, Detail: "empty (no model downloaded yet)"}
	}
	return CheckItem{Status: CheckOK, Detail: fmt.Sprintf("%d files, %s", n, HumanBytes(size))}
}

// HumanBytes formats a byte count with binary units ("1.5 GiB").
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
