package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gata-contrib/gata/app/core"
)

// handlers are the /api/ and /ui/ endpoints: each one calls the core and writes what it says.
type handlers struct {
	core *core.Core
	srv  *Server
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"` // the setting a validation error is about
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// fail maps a core error to a status: bad values and run requests 400, unknown jobs, runs
// and items 404, a licence not accepted yet 409, shutdown 503.
func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *core.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, apiError{Error: fe.Reason, Field: fe.Key})
	case errors.Is(err, core.ErrNoJob), errors.Is(err, core.ErrNoRun), errors.Is(err, core.ErrNoItem):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, core.ErrBadRun):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, core.ErrBadImage):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, core.ErrUnknownModel):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, core.ErrLicenseNotAccepted), errors.Is(err, core.ErrModelNotDownloaded):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, core.ErrNoValidate):
		writeError(w, http.StatusNotImplemented, err.Error())
	case errors.Is(err, core.ErrShuttingDown):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		h.srv.log.Error("web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (h *handlers) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
}

func (h *handlers) getInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.core.Info())
}

func (h *handlers) getSections(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.core.Sections())
}

func (h *handlers) getSettings(w http.ResponseWriter, r *http.Request) {
	s, err := h.core.Settings(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// patchSettings takes {"key": value, ...}; values may be strings, booleans or numbers.
func (h *handlers) patchSettings(w http.ResponseWriter, r *http.Request) {
	kv, err := decodeSettings(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s, err := h.core.UpdateSettings(r.Context(), kv)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func decodeSettings(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	var raw map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("read settings: want a JSON object of key: value: %w", err)
	}
	kv := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			kv[k] = v
		case bool:
			kv[k] = strconv.FormatBool(v)
		case json.Number:
			kv[k] = v.String()
		default:
			return nil, fmt.Errorf("read settings: %s: want a string, boolean or number", k)
		}
	}
	return kv, nil
}

func (h *handlers) listJobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.core.ListJobs())
}

func (h *handlers) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := h.core.Job(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (h *handlers) startCheck(w http.ResponseWriter, r *http.Request) {
	j, err := h.core.StartDataCheck()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (h *handlers) cancelJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.core.CancelJob(id); err != nil {
		h.fail(w, r, err)
		return
	}
	j, err := h.core.Job(id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}
