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

// errorStatuses maps the core's errors to the status of the response, tried in order: the
// first whose error err wraps wins (one error may wrap two). Every route answers a core
// error the same way; the one error whose meaning depends on the route (core.ErrSharing)
// is answered by its handlers.
var errorStatuses = []struct {
	err    error
	status int
}{
	// The wallet, submissions and uploads.
	{core.ErrBadWallet, http.StatusBadRequest},
	{core.ErrBadSubmit, http.StatusBadRequest},
	{core.ErrNotConfirmed, http.StatusBadRequest},
	{core.ErrBadShare, http.StatusBadRequest},
	{core.ErrNoWallet, http.StatusNotFound},
	{core.ErrNoUpload, http.StatusNotFound},
	{core.ErrNoUploader, http.StatusNotImplemented},
	{core.ErrWalletExists, http.StatusConflict},
	{core.ErrNothingToSubmit, http.StatusConflict},
	{core.ErrVerify, http.StatusUnprocessableEntity},
	// Chat, and the secret store.
	{core.ErrBadChat, http.StatusBadRequest},
	{core.ErrNoProvider, http.StatusNotFound},
	{core.ErrNoBattle, http.StatusNotFound},
	{core.ErrProviderExists, http.StatusConflict},
	{core.ErrBattleBusy, http.StatusConflict},
	{core.ErrAlreadyVoted, http.StatusConflict},
	{core.ErrSecretsLocked, http.StatusLocked},
	{core.ErrWrongPassphrase, http.StatusForbidden},
	{core.ErrNoSecrets, http.StatusNotImplemented},
	// Jobs, runs, their items and validation.
	{core.ErrNoJob, http.StatusNotFound},
	{core.ErrNoRun, http.StatusNotFound},
	{core.ErrNoItem, http.StatusNotFound},
	{core.ErrBadRun, http.StatusBadRequest},
	{core.ErrBadImage, http.StatusBadRequest},
	{core.ErrUnknownModel, http.StatusNotFound},
	{core.ErrLicenseNotAccepted, http.StatusConflict},
	{core.ErrModelNotDownloaded, http.StatusConflict},
	{core.ErrNoValidate, http.StatusNotImplemented},
	{core.ErrShuttingDown, http.StatusServiceUnavailable},
}

// errorStatus is the status of err's response: its entry in errorStatuses, else 500.
func errorStatus(err error) int {
	for _, e := range errorStatuses {
		if errors.Is(err, e.err) {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// fail answers a core error: a refused setting or parameter (a *core.FieldError, which
// wraps nothing) 400 with the field, a known error with its status from errorStatuses,
// anything else 500, logged.
func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *core.FieldError
	if errors.As(err, &fe) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fe.Reason, Field: fe.Key})
		return
	}
	status := errorStatus(err)
	if status == http.StatusInternalServerError {
		h.srv.log.Error("web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, err.Error())
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
