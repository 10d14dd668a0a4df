package chat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// anthropicProvider speaks Anthropic's Messages API.
type anthropicProvider struct {
	retrier
	messages anthropic.MessageService
	models   anthropic.ModelService
}

func newAnthropic(r retrier) *anthropicProvider {
	// Services built directly read no ANTHROPIC_* variable of the environment.
	opts := []option.RequestOption{
		option.WithHTTPClient(r.opts.httpClient),
		option.WithBaseURL(r.cfg.BaseURL),
		option.WithMaxRetries(0), // retries are ours: only before the first token
		option.WithoutOpenTelemetry(),
	}
	if key := r.cfg.key(); key != "" {
		opts = append(opts, option.WithAPIKey(key))
	}
	p := &anthropicProvider{retrier: r, messages: anthropic.NewMessageService(opts...), models: anthropic.NewModelService(opts...)}
	p.classify = p.classifyErr
	return p
}

func (p *anthropicProvider) Stream(ctx context.Context, req Request, fn func(Delta) error) (Usage, error) {
	params := anthropic.MessageNewParams{
		Model:     anthropic.Model(req.Model),
		MaxTokens: maxTokens(req.MaxTokens),
	}
	for _, m := range req.Messages {
		switch m.Role {
		case RoleSystem:
			params.System = append(params.System, anthropic.TextBlockParam{Text: m.Content})
		case RoleAssistant:
			params.Messages = append(params.Messages, anthropic.NewAssistantMessage(anthropic.NewTextBlock(m.Content)))
		default:
			params.Messages = append(params.Messages, anthropic.NewUserMessage(anthropic.NewTextBlock(m.Content)))
		}
	}
	var callOpts []option.RequestOption
	if req.Temperature != nil {
		// The SDK has no field for it; the API still takes it.
		callOpts = append(callOpts, option.WithJSONSet("temperature", *req.Temperature))
	}
	return p.run(ctx, req.Model, func(ctx context.Context, alive func(), emit func(string) error) (Usage, http.Header, error) {
		stream := p.messages.NewStreaming(ctx, params, callOpts...)
		defer stream.Close()
		var u Usage
		stopped := false
		for stream.Next() {
			alive()
			ev := stream.Current()
			switch ev.Type {
			case "message_start":
				u.InputTokens = int(ev.Message.Usage.InputTokens)
			case "content_block_delta":
				if ev.Delta.Type == "text_delta" {
					if err := emit(ev.Delta.Text); err != nil {
						return u, nil, err
					}
				}
			case "message_delta":
				u.StopReason = string(ev.Delta.StopReason)
				u.OutputTokens = int(ev.Usage.OutputTokens)
				if ev.Usage.InputTokens > 0 {
					u.InputTokens = int(ev.Usage.InputTokens)
				}
			case "message_stop":
				stopped = true
			}
		}
		if err := stream.Err(); err != nil {
			var ae *anthropic.Error
			if errors.As(err, &ae) && ae.Response != nil && ae.StatusCode != http.StatusOK {
				return u, ae.Response.Header, err
			}
			return u, nil, err
		}
		switch {
		case u.StopReason == string(anthropic.StopReasonRefusal):
			return u, nil, p.fail(req.Model, ErrRefusal, 0, "", nil)
		case !stopped:
			return u, nil, errCutOff
		}
		return u, nil, nil
	}, fn)
}

func (p *anthropicProvider) classifyErr(err error) *Error {
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		return nil
	}
	msg := ae.Message
	if msg == "" {
		msg = errorMessage([]byte(ae.RawJSON()))
	}
	if ae.StatusCode != 0 && ae.StatusCode != http.StatusOK {
		return p.fail("", kindForStatus(ae.StatusCode), ae.StatusCode, msg, err)
	}
	// An error event inside a 200 stream: sort it by its type.
	kind := ErrServer
	switch t := string(ae.Type()); {
	case t == "rate_limit_error":
		kind = ErrRateLimit
	case t == "authentication_error" || t == "permission_error":
		kind = ErrAuth
	case t == "not_found_error":
		kind = ErrNotFound
	case t == "invalid_request_error":
		kind = ErrBadRequest
	case strings.Contains(t, "overloaded"), t == "api_error", t == "":
	}
	return p.fail("", kind, 0, msg, err)
}

func (p *anthropicProvider) Models(ctx context.Context) ([]string, error) {
	var ids []string
	pager := p.models.ListAutoPaging(ctx, anthropic.ModelListParams{})
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
