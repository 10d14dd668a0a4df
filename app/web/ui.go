package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/assets"
)

// parseTemplates reads the HTML partials from assets/web/templates.
func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"fieldID": fieldID,
		"report":  checkReport,
		"percent": percent,
		"clock":   func(t time.Time) string { return t.Local().Format("15:04:05") },
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"seconds": seconds,
		"bytes":   byteSize,
		"score":   func(s *float32) string { return strconv.FormatFloat(float64(*s), 'f', 4, 32) },
	}).ParseFS(assets.Web, "web/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse web UI templates: %w", err)
	}
	return t, nil
}

// fieldID is the element ID of a setting's control ("ui.theme" → "setting-ui-theme").
func fieldID(key string) string { return "setting-" + strings.ReplaceAll(key, ".", "-") }

// checkReport returns a job's result as a data-check report, or nil for other results.
func checkReport(result any) *core.CheckReport {
	switch r := result.(type) {
	case core.CheckReport:
		return &r
	case *core.CheckReport:
		return r
	}
	return nil
}

// percent is a job's progress in whole percent, or -1 when its total is unknown.
func percent(j core.JobInfo) int {
	f := j.Fraction()
	if f < 0 {
		return -1
	}
	return int(math.Round(f * 100))
}

// seconds formats a duration in seconds for people ("4 s", "2 min 5 s").
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
}

// byteSize formats a byte count for people ("512 B", "12.5 MB", "1.2 GB").
func byteSize(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	f, units := float64(n)/(1<<10), "KB"
	for _, u := range []string{"MB", "GB", "TB"} {
		if f < 1<<10 {
			break
		}
		f, units = f/(1<<10), u
	}
	return fmt.Sprintf("%.1f %s", f, units)
}

// render executes a partial into a buffer first, so a template error is a clean 500.
func (h *handlers) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var b bytes.Buffer
	if err := h.srv.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		h.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func (h *handlers) uiNav(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "nav", h.core.Sections())
}

// sectionPage is what the section partial shows.
type sectionPage struct {
	core.Section
	Settings []core.Setting // the settings section only
	Jobs     []core.JobInfo // the settings section only
	Validate *validatePage  // the validate section only
	Info     core.Info
}

func (h *handlers) uiSection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, s := range h.core.Sections() {
		if s.ID != id {
			continue
		}
		p := sectionPage{Section: s, Info: h.core.Info()}
		if id == "settings" {
			var err error
			if p.Settings, err = h.core.Settings(r.Context()); err != nil {
				h.fail(w, r, err)
				return
			}
			p.Jobs = h.core.ListJobs()
		}
		if id == "validate" {
			p.Validate = h.validatePage(r)
			p.Validate.Runs = h.runsPage(r)
		}
		h.render(w, r, "section", p)
		return
	}
	writeError(w, http.StatusNotFound, "no section "+id)
}

func (h *handlers) uiJobs(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "jobs", h.core.ListJobs())
}

// staticFiles serves the page's script, styles and icon; browsers check back each time.
func staticFiles(fsys fs.FS) http.Handler {
	fileServer := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// serveFile serves one embedded file.
func serveFile(fsys fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, fsys, name)
	})
}
