package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gata-contrib/gata/app/core"
)

// maxChatBody bounds a chat request's JSON body (a prompt, a provider, a vote).
const maxChatBody = 256 << 10

// maxChatBattles is the most battles GET /api/chat/battles lists.
const maxChatBattles = 200

// decodeChat reads a JSON body into v; it answers 400 itself and returns false when it cannot.
func decodeChat(w http.ResponseWriter, r *http.Request, what string, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxChatBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, readStatus(err), fmt.Sprintf("read %s: want a JSON object: %v", what, readError(err)))
		return false
	}
	return true
}

func (h *handlers) listProviders(w http.ResponseWriter, r *http.Request) {
	ps, err := h.core.Providers(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// addProvider takes a core.ProviderInput.
func (h *handlers) addProvider(w http.ResponseWriter, r *http.Request) {
	var in core.ProviderInput
	if !decodeChat(w, r, "provider", &in) {
		return
	}
	p, err := h.core.AddProvider(r.Context(), in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (h *handlers) removeProvider(w http.ResponseWriter, r *http.Request) {
	if err := h.core.RemoveProvider(r.Context(), r.PathValue("name")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setProviderKey takes {api_key}; an empty key deletes the stored one.
func (h *handlers) setProviderKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		APIKey string `json:"api_key"`
	}
	if !decodeChat(w, r, "key", &in) {
		return
	}
	if err := h.core.SetProviderKey(r.Context(), r.PathValue("name"), in.APIKey); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handlers) secrets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.core.Secrets(r.Context()))
}

// unlockSecrets takes {passphrase}.
func (h *handlers) unlockSecrets(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Passphrase string `json:"passphrase"`
	}
	if !decodeChat(w, r, "passphrase", &in) {
		return
	}
	if err := h.core.UnlockSecrets(r.Context(), in.Passphrase); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.core.Secrets(r.Context()))
}

func (h *handlers) chatModels(w http.ResponseWriter, r *http.Request) {
	ms, err := h.core.ChatModels(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ms)
}

// listBattles answers with the newest battles; ?limit= (default and most 200).
func (h *handlers) listBattles(w http.ResponseWriter, r *http.Request) {
	limit := maxChatBattles
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a positive number", v))
			return
		}
		limit = min(n, maxChatBattles)
	}
	bs, err := h.core.Battles(r.Context(), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, bs)
}

// startBattle takes a core.BattleInput; the answers follow as chat events.
func (h *handlers) startBattle(w http.ResponseWriter, r *http.Request) {
	var in core.BattleInput
	if !decodeChat(w, r, "battle", &in) {
		return
	}
	b, err := h.core.StartBattle(r.Context(), in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, b)
}

func (h *handlers) getBattle(w http.ResponseWriter, r *http.Request) {
	b, err := h.core.Battle(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// continueBattle takes {"prompt": "..."}: a follow-up to every column.
func (h *handlers) continueBattle(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Prompt string `json:"prompt"`
	}
	if !decodeChat(w, r, "follow-up", &in) {
		return
	}
	b, err := h.core.ContinueBattle(r.Context(), r.PathValue("id"), in.Prompt)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, b)
}

// regenerateColumn takes {"column": "A"}: that column answers the last prompt again.
func (h *handlers) regenerateColumn(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Column string `json:"column"`
	}
	if !decodeChat(w, r, "regenerate request", &in) {
		return
	}
	b, err := h.core.RegenerateColumn(r.Context(), r.PathValue("id"), in.Column)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, b)
}

func (h *handlers) stopBattle(w http.ResponseWriter, r *http.Request) {
	if err := h.core.StopBattle(r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// voteBattle takes a core.VoteInput and answers with the battle, names revealed.
func (h *handlers) voteBattle(w http.ResponseWriter, r *http.Request) {
	var in core.VoteInput
	if !decodeChat(w, r, "vote", &in) {
		return
	}
	b, err := h.core.Vote(r.Context(), r.PathValue("id"), in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *handlers) chatLeaderboard(w http.ResponseWriter, r *http.Request) {
	lb, err := h.core.Leaderboard(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, lb)
}

// exportChat answers ?format=arena|dpo [&include_low=true] with a JSON-lines download.
// It writes into memory first, so a failure is a clean error status.
func (h *handlers) exportChat(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	low := false
	if v := q.Get("include_low"); v != "" {
		var err error
		if low, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("include_low %q is not true or false", v))
			return
		}
	}
	var b bytes.Buffer
	n, err := h.core.ExportChat(r.Context(), format, &b, low)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/x-ndjson; charset=utf-8")
	hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gata-chat-%s.jsonl"`, format))
	hd.Set("X-Records", strconv.Itoa(n))
	w.Write(b.Bytes())
}
