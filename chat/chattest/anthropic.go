package chattest

import (
	"encoding/json"
	"net/http"
	"testing"
)

// NewAnthropic starts a fake Anthropic Messages server: POST /v1/messages streamed as
// named events (message_start, content_block_start, ping, content_block_delta with
// text_delta, content_block_stop, message_delta with the stop reason and usage,
// message_stop; an error event for in-stream failures), or one JSON message when
// stream is false, and GET /v1/models. It stops when the test ends.
func NewAnthropic(t testing.TB, opts Options) *Server {
	s := newServer(t, opts, func(s *Server) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/messages", s.anthropicMessages)
		mux.HandleFunc("GET /v1/models", s.anthropicModels)
		return mux
	})
	s.URL = s.srv.URL
	return s
}

func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("request-id", "req_test")
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
}

func (s *Server) anthropicAuth(w http.ResponseWriter, r *http.Request) bool {
	// The API takes the key as x-api-key; the Go SDK sends it as a bearer token.
	if s.opts.APIKey != "" && r.Header.Get("X-Api-Key") != s.opts.APIKey && r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		anthropicError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return false
	}
	return true
}

func (s *Server) anthropicModels(w http.ResponseWriter, r *http.Request) {
	if !s.anthropicAuth(w, r) {
		return
	}
	var data []map[string]any
	for m := range s.opts.Models {
		data = append(data, map[string]any{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": false, "first_id": nil, "last_id": nil})
}

var anthropicErrorTypes = map[int]string{
	http.StatusBadRequest: "invalid_request_error", http.StatusUnauthorized: "authentication_error",
	http.StatusForbidden: "permission_error", http.StatusNotFound: "not_found_error",
	http.StatusTooManyRequests: "rate_limit_error", 529: "overloaded_error",
}

func (s *Server) anthropicMessages(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		System      json.RawMessage `json:"system"`
		MaxTokens   int             `json:"max_tokens"`
		Temperature *float64        `json:"temperature"`
		Stream      bool            `json:"stream"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.MaxTokens <= 0 {
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: Field required")
		return
	}
	req := Request{Model: body.Model, MaxTokens: body.MaxTokens, Temperature: body.Temperature, Stream: body.Stream}
	if len(body.System) > 0 {
		req.System = contentText(body.System)
	}
	for _, m := range body.Messages {
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: contentText(m.Content)})
	}
	b, known, n := s.record(req)
	if !s.anthropicAuth(w, r) {
		return
	}
	switch {
	case !known:
		anthropicError(w, http.StatusNotFound, "not_found_error", "model: "+body.Model)
		return
	case b.Status != 0:
		typ := anthropicErrorTypes[b.Status]
		if typ == "" {
			typ = "api_error"
		}
		anthropicError(w, b.Status, typ, http.StatusText(b.Status))
		return
	case n < b.FailFirst:
		st := b.FailStatus
		if st == 0 {
			st = http.StatusTooManyRequests
		}
		if b.RetryAfter != "" {
			w.Header().Set("Retry-After", b.RetryAfter)
		}
		typ := anthropicErrorTypes[st]
		if typ == "" {
			typ = "api_error"
		}
		anthropicError(w, st, typ, "Number of requests has exceeded your rate limit.")
		return
	}
	answer := b.reply(body.Model)
	stop := "end_turn"
	if b.Refuse != "" {
		answer, stop = b.Refuse, "refusal"
	}
	ps := pieces(answer)
	in := words(req.Messages)
	if !body.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "msg_test", "type": "message", "role": "assistant", "model": body.Model,
			"content":     []any{map[string]any{"type": "text", "text": answer}},
			"stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": in, "output_tokens": len(ps)},
		})
		return
	}
	out := startSSE(w)
	out.send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_test", "type": "message", "role": "assistant", "model": body.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": in, "output_tokens": 1}}})
	out.send("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
		"content_block": map[string]any{"type": "text", "text": ""}})
	out.send("ping", map[string]any{"type": "ping"})
	for i, p := range ps {
		if !wait(r, b.Delay, b.Hold) {
			return
		}
		b.Hold = nil
		if b.CutAfter != 0 && i == b.CutAfter {
			cut()
		}
		if b.ErrorAfter != 0 && i == b.ErrorAfter {
			out.send("error", map[string]any{"type": "error", "error": map[string]any{"type": "overloaded_error", "message": "Overloaded"}})
			return
		}
		out.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": p}})
	}
	out.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	if b.Truncate {
		return
	}
	out.send("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": len(ps)}})
	out.send("message_stop", map[string]any{"type": "message_stop"})
}
