package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gata-contrib/gata/app/core"
)

// TestFailStatus: every core error a request can end in gets its status, on every route,
// with the error's text as the body; a refused field names the field; anything else is a
// logged 500.
func TestFailStatus(t *testing.T) {
	var logged bytes.Buffer
	h := &handlers{srv: &Server{log: slog.New(slog.NewTextHandler(&logged, nil))}}
	type row struct {
		name   string
		err    error
		status int
	}
	tests := []row{
		{"bad wallet", core.ErrBadWallet, http.StatusBadRequest},
		{"bad submit", core.ErrBadSubmit, http.StatusBadRequest},
		{"not confirmed", core.ErrNotConfirmed, http.StatusBadRequest},
		{"bad share", core.ErrBadShare, http.StatusBadRequest},
		{"no wallet", core.ErrNoWallet, http.StatusNotFound},
		{"no upload", core.ErrNoUpload, http.StatusNotFound},
		{"no uploader", core.ErrNoUploader, http.StatusNotImplemented},
		{"wallet exists", core.ErrWalletExists, http.StatusConflict},
		{"nothing to submit", core.ErrNothingToSubmit, http.StatusConflict},
		{"does not verify", core.ErrVerify, http.StatusUnprocessableEntity},
		{"bad chat", core.ErrBadChat, http.StatusBadRequest},
		{"no provider", core.ErrNoProvider, http.StatusNotFound},
		{"no battle", core.ErrNoBattle, http.StatusNotFound},
		{"provider exists", core.ErrProviderExists, http.StatusConflict},
		{"battle busy", core.ErrBattleBusy, http.StatusConflict},
		{"voted already", core.ErrAlreadyVoted, http.StatusConflict},
		{"secrets locked", core.ErrSecretsLocked, http.StatusLocked},
		{"wrong passphrase", core.ErrWrongPassphrase, http.StatusForbidden},
		{"no secret store", core.ErrNoSecrets, http.StatusNotImplemented},
		{"no job", core.ErrNoJob, http.StatusNotFound},
		{"no run", core.ErrNoRun, http.StatusNotFound},
		{"no item", core.ErrNoItem, http.StatusNotFound},
		{"bad run", core.ErrBadRun, http.StatusBadRequest},
		{"bad image", core.ErrBadImage, http.StatusBadRequest},
		{"unknown model", core.ErrUnknownModel, http.StatusNotFound},
		{"licence not accepted", core.ErrLicenseNotAccepted, http.StatusConflict},
		{"model not downloaded", core.ErrModelNotDownloaded, http.StatusConflict},
		{"no validation", core.ErrNoValidate, http.StatusNotImplemented},
		{"shutting down", core.ErrShuttingDown, http.StatusServiceUnavailable},
		// An error marked twice: the wallet's and submissions' errors come first, as the
		// Submit routes answered them before the secret store's.
		{"bad submit and locked", fmt.Errorf("%w: %w", core.ErrBadSubmit, core.ErrSecretsLocked), http.StatusBadRequest},
		{"no wallet and does not verify", fmt.Errorf("%w: %w", core.ErrVerify, core.ErrNoWallet), http.StatusNotFound},
		{"other", errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, e := range errorStatuses {
		if !slices.ContainsFunc(tests, func(tt row) bool { return tt.err == e.err }) {
			t.Errorf("errorStatuses maps %q, which no row of this test checks", e.err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logged.Reset()
			err := fmt.Errorf("do the thing: %w", tt.err)
			rec := httptest.NewRecorder()
			h.fail(rec, httptest.NewRequest(http.MethodPost, "/api/thing", nil), err)
			if rec.Code != tt.status {
				t.Errorf("fail(%q) = %d, want %d", err, rec.Code, tt.status)
			}
			var body apiError
			if derr := json.Unmarshal(rec.Body.Bytes(), &body); derr != nil || body != (apiError{Error: err.Error()}) {
				t.Errorf("fail(%q) body = %s (%v), want {error: %q}", err, rec.Body, derr, err)
			}
			if got, want := strings.Contains(logged.String(), "web request failed"), tt.status == http.StatusInternalServerError; got != want {
				t.Errorf("fail(%q) logged %v, want %v: %s", err, got, want, logged.String())
			}
		})
	}
	t.Run("field", func(t *testing.T) {
		err := fmt.Errorf("update: %w", &core.FieldError{Key: "ui.theme", Reason: `"pink" is not one of light, dark`})
		rec := httptest.NewRecorder()
		h.fail(rec, httptest.NewRequest(http.MethodPatch, "/api/settings", nil), err)
		var body apiError
		json.Unmarshal(rec.Body.Bytes(), &body)
		if want := (apiError{Error: `"pink" is not one of light, dark`, Field: "ui.theme"}); rec.Code != http.StatusBadRequest || body != want {
			t.Errorf("fail(%q) = %d %+v, want 400 %+v", err, rec.Code, body, want)
		}
	})
}
