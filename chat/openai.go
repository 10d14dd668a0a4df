package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// openAIProvider speaks OpenAI-compatible chat completions (OpenAI, DeepSeek,
// OpenRouter, Together, Ollama, vLLM, llama.cpp's server, LM Studio).
type openAIProvider struct {
	retrier
	chat   openai.ChatCompletionService
	models openai.ModelService
}

func newOpenAI(r retrier) *openAIProvider {
	// The services are built without openai.NewClient so that no OPENAI_* variable of
	// the environment (a key, an organisation, extra headers) leaks to another server.
	opts := []option.RequestOption{
		option.WithHTTPClient(r.opts.httpClient),
		option.WithBaseURL(r.cfg.BaseURL),
		option.WithMaxRetries(0), // retries are ours: only before the first token
	}
	if key := r.cfg.key(); key != "" {
		opts = append(opts, option.WithAPIKey(key))
	}
	p := &openAIProvider{retrier: r, chat: openai.NewChatCompletionService(opts...), models: openai.NewModelService(opts...)}
	p.classify = p.classifyErr
	return p
}

func (p *openAIProvider) Stream(ctx context.Context, req Request, fn func(Delta) error) (Usage, error) {
	params := openai.ChatCompletionNewParams{
		Model: req.Model,
		// max_tokens rather than max_completion_tokens: every compatible server knows it.
		MaxTokens:     openai.Int(maxTokens(req.MaxTokens)),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if req.Temperature != nil {
		params.Temperature = openai.Float(*req.Temperature)
	}
	for _, m := range req.Messages {
		switch m.Role {
		case RoleSystem:
			params.Messages = append(params.Messages, openai.SystemMessage(m.Content))
		case RoleAssistant:
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Content))
		default:
			params.Messages = append(params.Messages, openai.UserMessage(m.Content))
		}
	}
	return p.run(ctx, req.Model, func(ctx context.Context, alive func(), emit func(string) error) (Usage, http.Header, error) {
		stream := p.chat.NewStreaming(ctx, params)
		defer stream.Close()
		var u Usage
		var refusal strings.Builder
		for stream.Next() {
			alive()
			chunk := stream.Current()
			if chunk.Usage.PromptTokens > 0 || chunk.Usage.CompletionTokens > 0 {
				u.InputTokens, u.OutputTokens = int(chunk.Usage.PromptTokens), int(chunk.Usage.CompletionTokens)
			}
			for _, c := range chunk.Choices {
				if c.Index != 0 {
					continue
				}
				refusal.WriteString(c.Delta.Refusal)
				if err := emit(c.Delta.Content); err != nil {
					return u, nil, err
				}
				if c.FinishReason != "" {
					u.StopReason = c.FinishReason
				}
			}
		}
		if err := stream.Err(); err != nil {
			var ae *openai.Error
			if errors.As(err, &ae) && ae.Response != nil {
				return u, ae.Response.Header, err
			}
			return u, nil, err
		}
		switch {
		case refusal.Len() > 0:
			return u, nil, p.fail(req.Model, ErrRefusal, 0, refusal.String(), nil)
		case u.StopReason == "content_filter":
			return u, nil, p.fail(req.Model, ErrRefusal, 0, "stopped by the content filter", nil)
		case u.StopReason == "":
			return u, nil, errCutOff
		}
		return u, nil, nil
	}, fn)
}

func (p *openAIProvider) classifyErr(err error) *Error {
	var ae *openai.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		if msg == "" {
			msg = errorMessage([]byte(ae.RawJSON()))
		}
		return p.fail("", kindForStatus(ae.StatusCode), ae.StatusCode, msg, err)
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		kind := ErrServer
		data := strings.ToLower(string(se.Event.Data))
		if strings.Contains(data, "rate_limit") || strings.Contains(data, "rate limit") {
			kind = ErrRateLimit
		}
		return p.fail("", kind, 0, errorMessage(se.Event.Data), err)
	}
	return nil
}

// errorMessage digs error.message (or a bare message) out of an error body.
func errorMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return string(body)
	}
	var inner struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(v.Error, &inner) == nil && inner.Message != "" {
		return inner.Message
	}
	var s string
	if json.Unmarshal(v.Error, &s) == nil && s != "" {
		return s
	}
	return v.Message
}

func (p *openAIProvider) Models(ctx context.Context) ([]string, error) {
	var ids []string
	pager := p.models.ListAutoPaging(ctx)
	for pager.Next() {
		ids = append(ids, pager.Current().ID)
	}
	if err := pager.Err(); err != nil {
		if len(p.cfg.Models) > 0 {
			return mergeModels(nil, p.cfg.Models), nil
		}
		pe := p.classifyErr(err)
		if pe == nil {
			pe = p.transportError("", err)
		}
		pe.Provider, pe.Model = p.cfg.Name, "*"
		return nil, fmt.Errorf("list models: %w", pe)
	}
	sort.Strings(ids)
	return mergeModels(ids, p.cfg.Models), nil
}
