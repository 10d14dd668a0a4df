package chattest

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// NewOpenAI starts a fake OpenAI-compatible server: POST /v1/chat/completions
// (streamed as "data: {chunk}" lines ending with "data: [DONE]", with a usage chunk
// when stream_options.include_usage is set, or one JSON completion when stream is
// false) and GET /v1/models. It stops when the test ends.
func NewOpenAI(t testing.TB, opts Options) *Server {
	s := newServer(t, opts, func(s *Server) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/chat/completions", s.openAIChat)
		mux.HandleFunc("GET /v1/models", s.openAIModels)
		return mux
	})
	s.URL = s.srv.URL + "/v1"
	return s
}

func openAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

func (s *Server) openAIAuth(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		openAIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return false
	}
	return true
}

func (s *Server) openAIModels(w http.ResponseWriter, r *http.Request) {
	if !s.openAIAuth(w, r) {
		return
	}
	var data []map[string]any
	for m := range s.opts.Models {
		data = append(data, map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "chattest"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) openAIChat(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		MaxTokens           int      `json:"max_tokens"`
		MaxCompletionTokens int      `json:"max_completion_tokens"`
		Temperature         *float64 `json:"temperature"`
		Stream              bool     `json:"stream"`
		StreamOptions       struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	req := Request{Model: body.Model, MaxTokens: max(body.MaxTokens, body.MaxCompletionTokens),
		Temperature: body.Temperature, Stream: body.Stream, IncludeUsage: body.StreamOptions.IncludeUsage}
	for _, m := range body.Messages {
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: contentText(m.Content)})
	}
	b, known, n := s.record(req)
	if !s.openAIAuth(w, r) {
		return
	}
	switch {
	case !known:
		openAIError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
			"The model `"+body.Model+"` does not exist or you do not have access to it.")
		return
	case b.Status != 0:
		openAIError(w, b.Status, "server_error", "", http.StatusText(b.Status))
		return
	case n < b.FailFirst:
		st := b.FailStatus
		if st == 0 {
			st = http.StatusTooManyRequests
		}
		if b.RetryAfter != "" {
			w.Header().Set("Retry-After", b.RetryAfter)
		}
		openAIError(w, st, "requests", "rate_limit_exceeded", "Rate limit reached for requests.")
		return
	}
	answer := b.reply(body.Model)
	finish := "stop"
	created := time.Now().Unix()
	if !body.Stream {
		msg := map[string]any{"role": "assistant", "content": answer}
		if b.Refuse != "" {
			msg = map[string]any{"role": "assistant", "content": nil, "refusal": b.Refuse}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "chatcmpl-test", "object": "chat.completion", "created": created, "model": body.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   map[string]any{"prompt_tokens": words(req.Messages), "completion_tokens": len(pieces(answer)), "total_tokens": words(req.Messages) + len(pieces(answer))},
		})
		return
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": created, "model": body.Model,
			"system_fingerprint": "fp_test",
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
	}
	out := startSSE(w)
	out.send("", chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
	ps := pieces(answer)
	if b.Refuse != "" {
		ps = pieces(b.Refuse)
	}
	for i, p := range ps {
		if !wait(r, b.Delay, b.Hold) {
			return
		}
		b.Hold = nil
		if b.CutAfter != 0 && i == b.CutAfter {
			cut()
		}
		if b.ErrorAfter != 0 && i == b.ErrorAfter {
			out.send("", map[string]any{"error": map[string]any{"message": "The server had an error while processing your request.", "type": "server_error"}})
			return
		}
		if b.Refuse != "" {
			out.send("", chunk(map[string]any{"refusal": p}, nil))
		} else {
			out.send("", chunk(map[string]any{"content": p}, nil))
		}
	}
	if b.Truncate {
		return
	}
	out.send("", chunk(map[string]any{}, finish))
	if body.StreamOptions.IncludeUsage {
		out.send("", map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": created, "model": body.Model,
			"choices": []any{}, "usage": map[string]any{"prompt_tokens": words(req.Messages), "completion_tokens": len(ps), "total_tokens": words(req.Messages) + len(ps)}})
	}
	out.send("", "[DONE]")
}
