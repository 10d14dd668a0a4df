package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gata-contrib/gata/chat"
	"github.com/gata-contrib/gata/storage"
)

// ChatStore keeps chat providers and battles; storage.Store satisfies it.
type ChatStore interface {
	SaveChatProvider(ctx context.Context, p storage.ChatProvider) error
	ChatProviders(ctx context.Context) ([]storage.ChatProvider, error)
	DeleteChatProvider(ctx context.Context, name string) error
	SaveChatBattle(ctx context.Context, b storage.ChatBattle) error
	ChatBattle(ctx context.Context, id string) (storage.ChatBattle, error)
	ChatBattles(ctx context.Context, before time.Time, limit int) ([]storage.ChatBattle, error)
	VoteChatBattle(ctx context.Context, id string, v storage.ChatVote) error
	SetChatQuality(ctx context.Context, id string, q storage.ChatQuality) error
	ChatHistory(ctx context.Context, before time.Time, limit int) (prompts, outcomes []string, err error)
}

// ChatKeyName is the secret name under which a provider's API key is kept.
func ChatKeyName(provider string) string { return "chat.provider." + provider }

// SettingChatQualityMin is the setting holding the quality score below which battles
// are kept out of exports and the leaderboard.
const SettingChatQualityMin = "chat.quality_min"

// defaultQualityMin is the setting's default: chat.DefaultQualityThreshold.
var defaultQualityMin = strconv.FormatFloat(chat.DefaultQualityThreshold, 'g', -1, 64)

// EventChat is the event type of battles. Data: ChatEvent.
const EventChat = "chat"

// Chat event kinds (ChatEvent.Kind). Per column and turn: one ChatStart, any number of
// ChatDelta, then ChatDone or ChatError; per run: one ChatEnd once the battle is
// stored; ChatVoted after the vote.
const (
	ChatStart = "start"
	ChatDelta = "delta"
	ChatDone  = "done"
	ChatError = "error"
	ChatEnd   = "end"
	ChatVoted = "vote"
)

// Errors of the chat methods that callers branch on (a UI maps them to a status).
var (
	// ErrBadChat: the request cannot be done as asked (bad provider fields, model ids,
	// an empty prompt, an unknown vote outcome or column).
	ErrBadChat = errors.New("bad chat request")
	// ErrNoProvider: no provider has that name.
	ErrNoProvider = errors.New("no such provider")
	// ErrProviderExists: a provider with that name is configured already.
	ErrProviderExists = errors.New("a provider with that name exists")
	// ErrNoBattle: no battle has that id (or, for StopBattle, none with it is running).
	ErrNoBattle = errors.New("no such battle")
	// ErrBattleBusy: the battle is streaming or being voted on; wait for its ChatEnd.
	ErrBattleBusy = errors.New("the battle is busy")
	// ErrAlreadyVoted: the battle has its vote; it takes no more turns or votes.
	ErrAlreadyVoted = errors.New("the battle has a vote already")
)

// chatBad marks err as ErrBadChat, keeping its message.
func chatBad(err error) error { return markedError{err: err, mark: ErrBadChat} }

// ProviderInput adds a chat provider.
type ProviderInput struct {
	// Name is the prefix of the provider's model ids: letters, digits, '.', '_', '-'.
	Name string `json:"name"`
	// Kind is "openai" (any OpenAI-compatible server) or "anthropic".
	Kind    string `json:"kind"`
	BaseURL string `json:"base_url"`
	// APIKeyEnv names the environment variable holding the API key ("" for none).
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// APIKey, when given, is kept in the secret store (the OS keyring or the encrypted
	// file), never in the database; it wins over APIKeyEnv.
	APIKey string `json:"api_key,omitempty"`
	// Models are model names to offer even when the server does not list them.
	Models []string `json:"models,omitempty"`
}

// ProviderInfo is a configured provider. It never holds the key.
type ProviderInfo struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	BaseURL   string    `json:"base_url"`
	APIKeyEnv string    `json:"api_key_env,omitempty"`
	Models    []string  `json:"models"`
	HasKey    bool      `json:"has_key"`              // a key was found (in the secret store or the environment)
	KeyStored bool      `json:"key_stored,omitempty"` // the key is in the secret store
	KeyError  string    `json:"key_error,omitempty"`  // why the stored key cannot be read (locked file, …)
	Created   time.Time `json:"created"`
}

// KeyState says in a few words where the provider's key comes from: "key stored", "key
// unreadable: …", "key from $VAR", "key from $VAR (not set)" or "no key".
func (p ProviderInfo) KeyState() string {
	switch {
	case p.KeyStored:
		return "key stored"
	case p.KeyError != "":
		return "key unreadable: " + p.KeyError
	case p.APIKeyEnv != "" && p.HasKey:
		return "key from $" + p.APIKeyEnv
	case p.APIKeyEnv != "":
		return "key from $" + p.APIKeyEnv + " (not set)"
	}
	return "no key"
}

// ProviderModels is what one provider offers: model ids ("provider/model"), or why
// they could not be listed.
type ProviderModels struct {
	Provider string   `json:"provider"`
	Models   []string `json:"models"`
	Error    string   `json:"error,omitempty"`
}

// BattleInput starts a battle.
type BattleInput struct {
	// Models are 2 to 4 distinct "provider/model" ids.
	Models []string `json:"models"`
	Prompt string   `json:"prompt"`
	// Blind hides which model answers in which column until the vote (the UIs'
	// default); a named battle shows them from the start.
	Blind bool `json:"blind"`
}

// VoteInput is the user's verdict: Outcome is a column letter ("A" … "D"), "tie" or
// "bad" (every answer is bad), in any case; Reason is optional.
type VoteInput struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// BattleInfo is a battle as the screens show it. While the battle is blind and not
// voted, Models and every column's Model are empty.
type BattleInfo struct {
	ID       string       `json:"id"`
	Created  time.Time    `json:"created"`
	Blind    bool         `json:"blind"`
	Running  bool         `json:"running"`  // streaming now; it takes no vote until its ChatEnd
	Revealed bool         `json:"revealed"` // the model names are shown
	Prompts  []string     `json:"prompts"`
	Columns  []ColumnInfo `json:"columns"`
	Models   []string     `json:"models,omitempty"` // in the order they were picked
	Vote     *VoteInfo    `json:"vote,omitempty"`
	Quality  *QualityInfo `json:"quality,omitempty"`
}

// ColumnInfo is one column of a battle: its model (once revealed) and one answer per prompt.
type ColumnInfo struct {
	Column  string       `json:"column"`
	Model   string       `json:"model,omitempty"`
	Answers []AnswerInfo `json:"answers"`
}

// AnswerInfo is one answer, complete, failed or still streaming.
type AnswerInfo struct {
	Text         string  `json:"text"`
	Done         bool    `json:"done"`            // finished (well or not)
	Error        string  `json:"error,omitempty"` // one line; "" when it went well
	ErrorKind    string  `json:"error_kind,omitempty"`
	TTFTMillis   int64   `json:"ttft_ms,omitempty"`
	OutputTokens int     `json:"output_tokens,omitempty"`
	TokensPerSec float64 `json:"tokens_per_sec,omitempty"`
}

// VoteInfo is the vote on a battle.
type VoteInfo struct {
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// QualityInfo is a battle's quality score in [0, 1] with the reasons that lowered it.
type QualityInfo struct {
	Score     float64         `json:"score"`
	Diversity float64         `json:"diversity"`
	Threshold float64         `json:"threshold"`
	Passes    bool            `json:"passes"` // Score reaches Threshold: the battle is exported
	Reasons   []QualityReason `json:"reasons,omitempty"`
}

// QualityReason is one signal that lowered a score ("spam", "fast_vote", …) and what was found.
type QualityReason struct {
	Signal  string  `json:"signal"`
	Detail  string  `json:"detail"`
	Penalty float64 `json:"penalty"`
}

// ChatEvent is the data of an EventChat event: progress of one column, or the end or
// vote of a battle. It is small: a delta carries only its new text.
type ChatEvent struct {
	Battle string `json:"battle"`
	Kind   string `json:"kind"`
	Turn   int    `json:"turn"`
	Column string `json:"column,omitempty"`
	// Model is the column's model on ChatStart of a named battle.
	Model        string  `json:"model,omitempty"`
	Text         string  `json:"text,omitempty"`
	Error        string  `json:"error,omitempty"`
	ErrorKind    string  `json:"error_kind,omitempty"`
	TTFTMillis   int64   `json:"ttft_ms,omitempty"`
	Tokens       int     `json:"tokens,omitempty"`
	TokensPerSec float64 `json:"tokens_per_sec,omitempty"`
	// Models maps columns to models on ChatVoted (and ChatEnd of a named battle).
	Models map[string]string `json:"models,omitempty"`
	// Quality is the score on ChatVoted.
	Quality *QualityInfo `json:"quality,omitempty"`
}

// Leaderboard is the private leaderboard: Bradley–Terry ratings of the models over the
// user's voted battles that pass the quality threshold.
type Leaderboard struct {
	Ratings   []RatingInfo `json:"ratings"`
	Battles   int          `json:"battles"`  // voted battles counted
	Excluded  int          `json:"excluded"` // voted battles left out for their quality
	Threshold float64      `json:"threshold"`
}

// RatingInfo is one model's place: an Elo-scale rating with its bootstrap 95% interval.
type RatingInfo struct {
	Model  string  `json:"model"`
	Rating float64 `json:"rating"`
	Lower  float64 `json:"lower"`
	Upper  float64 `json:"upper"`
	Games  int     `json:"games"`
	Wins   int     `json:"wins"`
	Ties   int     `json:"ties"`
	Losses int     `json:"losses"`
}

// Export formats.
const (
	ExportArena = "arena" // Arena battle records, one per pair of columns
	ExportDPO   = "dpo"   // TRL preference pairs, one per (winner, loser)
)

// Leaderboard bootstrap: rounds and seed, so the same votes give the same intervals.
const (
	leaderboardRounds = 200
	leaderboardSeed   = 1
)

// chatHistoryBattles is how many earlier battles the quality signals compare with.
const chatHistoryBattles = 1000

// allBattles is the limit that reads every stored battle.
const allBattles = math.MaxInt32

// chatState is the chat part of the core: the battles streaming now, and the
// lifetime their goroutines run under.
type chatState struct {
	mu     sync.Mutex
	ctx    context.Context // made on first use, cancelled by close
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
	busy   map[string]*liveBattle // battles streaming or being voted on
	// now is the clock of votes (tests move it on instead of sleeping).
	now func() time.Time
	// providerOpts are passed to chat.NewProvider (tests shorten the retry waits).
	providerOpts []chat.ProviderOption
}

// liveBattle is a battle while it streams: what the screens are shown, built from its events.
type liveBattle struct {
	info   BattleInfo
	models []string // column order, for the end event of a named battle
	cancel context.CancelFunc
	done   chan struct{}
}

// acquire marks the battle busy; release undoes it. It fails with ErrBattleBusy when
// the battle is busy already, and once the core is closing.
func (s *chatState) acquire(id string, lb *liveBattle) (context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrShuttingDown
	}
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	if s.busy == nil {
		s.busy = map[string]*liveBattle{}
	}
	if _, ok := s.busy[id]; ok {
		return nil, fmt.Errorf("battle %s: %w", id, ErrBattleBusy)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	lb.cancel, lb.done = cancel, make(chan struct{})
	s.busy[id] = lb
	return ctx, nil
}

func (s *chatState) release(id string) {
	s.mu.Lock()
	lb := s.busy[id]
	delete(s.busy, id)
	s.mu.Unlock()
	if lb != nil {
		lb.cancel()
		close(lb.done)
	}
}

func (s *chatState) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// close stops every battle and waits for them to be stored.
func (s *chatState) close() {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

var (
	providerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$`)
	envNameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// AddProvider configures a chat provider. The name must be new. A key given in
// in.APIKey goes to the secret store (never the database); otherwise the provider names
// the environment variable to read it from, or needs none (a local server).
func (c *Core) AddProvider(ctx context.Context, in ProviderInput) (ProviderInfo, error) {
	in.Name, in.Kind, in.BaseURL, in.APIKeyEnv = strings.TrimSpace(in.Name), strings.TrimSpace(in.Kind), strings.TrimSpace(in.BaseURL), strings.TrimSpace(in.APIKeyEnv)
	fail := func(format string, args ...any) (ProviderInfo, error) {
		return ProviderInfo{}, chatBad(fmt.Errorf("add provider %q: "+format, append([]any{in.Name}, args...)...))
	}
	if !providerNameRE.MatchString(in.Name) {
		return fail("the name must be 1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if in.Kind != chat.KindOpenAI && in.Kind != chat.KindAnthropic {
		return fail("kind must be %q or %q, not %q", chat.KindOpenAI, chat.KindAnthropic, in.Kind)
	}
	u, err := url.Parse(in.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("base URL %q is not an http:// or https:// URL", in.BaseURL)
	}
	if in.APIKeyEnv != "" && !envNameRE.MatchString(in.APIKeyEnv) {
		return fail("%q is not an environment variable name", in.APIKeyEnv)
	}
	var models []string
	for _, m := range in.Models {
		m = strings.TrimSpace(m)
		if m == "" || strings.ContainsAny(m, " \t\n") {
			return fail("model name %q is empty or has spaces", m)
		}
		if !slices.Contains(models, m) {
			models = append(models, m)
		}
	}
	cfg := chat.ProviderConfig{Name: in.Name, Kind: in.Kind, BaseURL: in.BaseURL, APIKeyEnv: in.APIKeyEnv, Models: models}
	if err := cfg.Validate(); err != nil {
		return ProviderInfo{}, chatBad(fmt.Errorf("add provider: %w", err))
	}
	existing, err := c.store.ChatProviders(ctx)
	if err != nil {
		return ProviderInfo{}, fmt.Errorf("add provider %q: %w", in.Name, err)
	}
	for _, p := range existing {
		if strings.EqualFold(p.Name, in.Name) {
			return ProviderInfo{}, fmt.Errorf("add provider %q: %w", in.Name, ErrProviderExists)
		}
	}
	if strings.ContainsAny(in.APIKey, " \t\r\n") {
		return fail("the API key has spaces or line breaks")
	}
	if in.APIKey != "" {
		if err := c.storeProviderKey(in.Name, in.APIKey); err != nil {
			return ProviderInfo{}, fmt.Errorf("add provider %q: %w", in.Name, err)
		}
	}
	sp := storage.ChatProvider{Name: in.Name, Kind: in.Kind, BaseURL: in.BaseURL, APIKeyEnv: in.APIKeyEnv, Models: models}
	if err := c.store.SaveChatProvider(ctx, sp); err != nil {
		if in.APIKey != "" {
			c.opts.Secrets.Delete(ChatKeyName(in.Name))
		}
		return ProviderInfo{}, fmt.Errorf("add provider %q: %w", in.Name, err)
	}
	c.log.Info("chat provider added", "provider", cfg)
	sp.Created = time.Now()
	return c.providerInfo(ctx, sp), nil
}

// storeProviderKey keeps a provider's API key in the secret store.
func (c *Core) storeProviderKey(name, key string) error {
	if c.opts.Secrets == nil {
		return chatBad(fmt.Errorf("store the API key: %w (name an environment variable instead)", ErrNoSecrets))
	}
	if err := c.opts.Secrets.Set(ChatKeyName(name), key); err != nil {
		return fmt.Errorf("store the API key: %w", err)
	}
	return nil
}

// SetProviderKey replaces (or, with an empty key, deletes) the API key of a provider in
// the secret store.
func (c *Core) SetProviderKey(ctx context.Context, name, key string) error {
	if _, err := c.providerByName(ctx, name); err != nil {
		return err
	}
	key = strings.TrimSpace(key)
	if key == "" {
		if c.opts.Secrets == nil {
			return nil
		}
		if err := c.opts.Secrets.Delete(ChatKeyName(name)); err != nil {
			return fmt.Errorf("delete the API key of provider %q: %w", name, err)
		}
		c.log.Info("chat provider key deleted", "provider", name)
		return nil
	}
	if strings.ContainsAny(key, " \t\r\n") {
		return chatBad(fmt.Errorf("set the API key of provider %q: the key has spaces or line breaks", name))
	}
	if err := c.storeProviderKey(name, key); err != nil {
		return fmt.Errorf("set the API key of provider %q: %w", name, err)
	}
	c.log.Info("chat provider key stored", "provider", name, "backend", c.opts.Secrets.Backend())
	return nil
}

func (c *Core) providerByName(ctx context.Context, name string) (storage.ChatProvider, error) {
	ps, err := c.store.ChatProviders(ctx)
	if err != nil {
		return storage.ChatProvider{}, fmt.Errorf("find provider %q: %w", name, err)
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return storage.ChatProvider{}, fmt.Errorf("provider %q: %w", name, ErrNoProvider)
}

func (c *Core) providerInfo(ctx context.Context, p storage.ChatProvider) ProviderInfo {
	info := ProviderInfo{Name: p.Name, Kind: p.Kind, BaseURL: p.BaseURL, APIKeyEnv: p.APIKeyEnv,
		Models: append([]string{}, p.Models...), Created: p.Created}
	key, stored, err := c.providerKey(ctx, p)
	info.HasKey, info.KeyStored = key != "", stored
	if err != nil {
		info.KeyError = err.Error()
	}
	return info
}

// providerKey finds a provider's key: in the secret store when one is set and holds it,
// else in the environment variable the provider names. stored says which.
func (c *Core) providerKey(ctx context.Context, p storage.ChatProvider) (key string, stored bool, err error) {
	if c.opts.Secrets != nil {
		key, err = c.opts.Secrets.Get(ctx, ChatKeyName(p.Name))
		switch {
		case err == nil:
			return key, true, nil
		case !errors.Is(err, storage.ErrSecretNotFound):
			return "", false, fmt.Errorf("read the API key of provider %q: %w", p.Name, err)
		}
	}
	if p.APIKeyEnv != "" {
		return os.Getenv(p.APIKeyEnv), false, nil
	}
	return "", false, nil
}

// providerConfig is the provider with its key (see providerKey).
func (c *Core) providerConfig(ctx context.Context, p storage.ChatProvider) (chat.ProviderConfig, error) {
	cfg := chat.ProviderConfig{Name: p.Name, Kind: p.Kind, BaseURL: p.BaseURL, APIKeyEnv: p.APIKeyEnv,
		Models: p.Models, Timeout: p.Timeout}
	key, _, err := c.providerKey(ctx, p)
	cfg.APIKey = key
	return cfg, err
}

// Providers lists the configured chat providers by name.
func (c *Core) Providers(ctx context.Context) ([]ProviderInfo, error) {
	ps, err := c.store.ChatProviders(ctx)
	if err != nil {
		return nil, fmt.Errorf("list providers: %w", err)
	}
	out := []ProviderInfo{}
	for _, p := range ps {
		out = append(out, c.providerInfo(ctx, p))
	}
	return out, nil
}

// RemoveProvider removes a provider; its stored battles stay.
func (c *Core) RemoveProvider(ctx context.Context, name string) error {
	if err := c.store.DeleteChatProvider(ctx, name); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("remove provider %q: %w", name, ErrNoProvider)
		}
		return fmt.Errorf("remove provider %q: %w", name, err)
	}
	if c.opts.Secrets != nil {
		if err := c.opts.Secrets.Delete(ChatKeyName(name)); err != nil {
			c.log.Warn("chat provider removed, its API key could not be deleted", "provider", name, "err", err)
		}
	}
	c.log.Info("chat provider removed", "provider", name)
	return nil
}

// modelListTimeout bounds one provider's model list request.
const modelListTimeout = 15 * time.Second

// ChatModels lists, per provider, the model ids to pick from: the configured models and
// what the provider's model list endpoint offers. A provider that cannot be asked has
// its Error set; the others are listed all the same.
func (c *Core) ChatModels(ctx context.Context) ([]ProviderModels, error) {
	ps, err := c.store.ChatProviders(ctx)
	if err != nil {
		return nil, fmt.Errorf("list chat models: %w", err)
	}
	out := make([]ProviderModels, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		out[i] = ProviderModels{Provider: p.Name, Models: []string{}}
		wg.Go(func() {
			names, err := func() ([]string, error) {
				cfg, err := c.providerConfig(ctx, p)
				if err != nil {
					return nil, err
				}
				prov, err := chat.NewProvider(cfg, c.chat.providerOpts...)
				if err != nil {
					return nil, err
				}
				ctx, cancel := context.WithTimeout(ctx, modelListTimeout)
				defer cancel()
				return prov.Models(ctx)
			}()
			if err != nil {
				out[i].Error = oneLineErr(err)
				for _, m := range p.Models {
					out[i].Models = append(out[i].Models, p.Name+"/"+m)
				}
				return
			}
			for _, m := range names {
				out[i].Models = append(out[i].Models, p.Name+"/"+m)
			}
		})
	}
	wg.Wait()
	return out, nil
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// chatProviders builds the providers the models' ids name.
func (c *Core) chatProviders(ctx context.Context, models []string) (chat.Providers, error) {
	ps, err := c.store.ChatProviders(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]storage.ChatProvider{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	out := chat.Providers{}
	for _, m := range models {
		name, _, err := chat.SplitModelID(m)
		if err != nil {
			return nil, chatBad(err)
		}
		if out[name] != nil {
			continue
		}
		p, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("model %q: provider %q: %w", m, name, ErrNoProvider)
		}
		cfg, err := c.providerConfig(ctx, p)
		if err != nil {
			return nil, err
		}
		prov, err := chat.NewProvider(cfg, c.chat.providerOpts...)
		if err != nil {
			return nil, err
		}
		out[name] = prov
	}
	return out, nil
}

// StartBattle sends the prompt to every model at once and returns at once with the
// battle's columns; the answers stream in the background as EventChat events. The
// battle is stored when every column has ended (ChatEnd); StopBattle ends it sooner.
func (c *Core) StartBattle(ctx context.Context, in BattleInput) (BattleInfo, error) {
	providers, err := c.chatProviders(ctx, in.Models)
	if err != nil {
		return BattleInfo{}, fmt.Errorf("start battle: %w", err)
	}
	// The same random bytes give NewBattle's id and columns, shown now, and RunBattle's.
	seed := make([]byte, 512)
	if _, err := rand.Read(seed); err != nil {
		return BattleInfo{}, fmt.Errorf("start battle: %w", err)
	}
	req := chat.BattleRequest{Models: in.Models, Prompt: in.Prompt, Blind: in.Blind, Rand: bytes.NewReader(seed)}
	layout, err := chat.NewBattle(req)
	if err != nil {
		return BattleInfo{}, chatBad(err)
	}
	req.Rand = bytes.NewReader(seed)
	return c.runBattle(layout, 0, nil, func(ctx context.Context, events func(chat.BattleEvent)) (*chat.Battle, error) {
		return chat.RunBattle(ctx, providers, req, events)
	})
}

// ContinueBattle sends the next prompt to every model of a battle, each with its own
// conversation (multi-turn), streaming like StartBattle.
func (c *Core) ContinueBattle(ctx context.Context, id, prompt string) (BattleInfo, error) {
	if strings.TrimSpace(prompt) == "" {
		return BattleInfo{}, chatBad(fmt.Errorf("continue battle %s: the prompt is empty", id))
	}
	b, providers, err := c.battleToRun(ctx, id)
	if err != nil {
		return BattleInfo{}, fmt.Errorf("continue battle %s: %w", id, err)
	}
	view := *b
	view.Prompts = append(slices.Clip(b.Prompts), prompt)
	return c.runBattle(&view, len(b.Prompts), nil, func(ctx context.Context, events func(chat.BattleEvent)) (*chat.Battle, error) {
		return b, chat.ContinueBattle(ctx, providers, b, prompt, events)
	})
}

// RegenerateColumn asks one column's model again for the latest prompt; its new answer
// replaces the old one.
func (c *Core) RegenerateColumn(ctx context.Context, id, column string) (BattleInfo, error) {
	column = strings.ToUpper(strings.TrimSpace(column))
	b, providers, err := c.battleToRun(ctx, id)
	if err != nil {
		return BattleInfo{}, fmt.Errorf("regenerate column %s of battle %s: %w", column, id, err)
	}
	if b.Side(column) == nil {
		return BattleInfo{}, chatBad(fmt.Errorf("regenerate column %q of battle %s: no such column", column, id))
	}
	return c.runBattle(b, len(b.Prompts)-1, []string{column}, func(ctx context.Context, events func(chat.BattleEvent)) (*chat.Battle, error) {
		return b, chat.Regenerate(ctx, providers, b, column, events)
	})
}

// battleToRun loads a stored battle that may take another turn, with its providers.
func (c *Core) battleToRun(ctx context.Context, id string) (*chat.Battle, chat.Providers, error) {
	if c.liveInfo(id) != nil {
		return nil, nil, ErrBattleBusy
	}
	sb, err := c.storedBattle(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	b := fromStoredBattle(sb)
	if b.Vote != nil {
		return nil, nil, ErrAlreadyVoted
	}
	providers, err := c.chatProviders(ctx, b.Models)
	if err != nil {
		return nil, nil, err
	}
	return b, providers, nil
}

func (c *Core) storedBattle(ctx context.Context, id string) (storage.ChatBattle, error) {
	sb, err := c.store.ChatBattle(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return sb, ErrNoBattle
	}
	return sb, err
}

// runBattle shows view (turn and columns streaming) while run streams in the
// background, then stores the battle run returns.
func (c *Core) runBattle(view *chat.Battle, turn int, columns []string,
	run func(ctx context.Context, events func(chat.BattleEvent)) (*chat.Battle, error)) (BattleInfo, error) {
	lb := &liveBattle{info: battleInfo(view, 0, false)}
	lb.info.Running = true
	for i := range lb.info.Columns {
		col := &lb.info.Columns[i]
		if columns != nil && !slices.Contains(columns, col.Column) {
			continue
		}
		for len(col.Answers) <= turn {
			col.Answers = append(col.Answers, AnswerInfo{})
		}
		col.Answers[turn] = AnswerInfo{}
	}
	for _, s := range view.Sides {
		lb.models = append(lb.models, s.Model)
	}
	ctx, err := c.chat.acquire(view.ID, lb)
	if err != nil {
		return BattleInfo{}, err
	}
	info := cloneInfo(lb.info)
	c.chat.wg.Add(1)
	go func() {
		defer c.chat.wg.Done()
		b, err := run(ctx, func(e chat.BattleEvent) { c.battleEvent(lb, e) })
		end := ChatEvent{Battle: view.ID, Kind: ChatEnd, Turn: turn}
		if err == nil {
			if !b.Blind {
				end.Models = columnModels(b)
			}
			// Store even when the core is closing: the answers so far are the user's.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err = c.store.SaveChatBattle(sctx, toStoredBattle(b))
			cancel()
		}
		if err != nil {
			c.log.Error("chat battle", "battle", view.ID, "err", err)
			end.Error = oneLineErr(err)
		}
		// Free the battle before saying it ended, so a vote sent on ChatEnd finds it free.
		c.chat.release(view.ID)
		c.bus.publish(EventChat, end)
	}()
	return info, nil
}

func (c *Core) mu() *sync.Mutex { return &c.chat.mu }

func columnModels(b *chat.Battle) map[string]string {
	m := map[string]string{}
	for _, s := range b.Sides {
		m[s.Column] = s.Model
	}
	return m
}

// battleEvent folds a column's progress into the live battle and publishes it.
func (c *Core) battleEvent(lb *liveBattle, e chat.BattleEvent) {
	ev := ChatEvent{Battle: e.BattleID, Kind: string(e.Kind), Turn: e.Turn, Column: e.Column, Model: e.Model,
		TTFTMillis: e.TTFT.Milliseconds(), Tokens: e.OutputTokens, TokensPerSec: e.TokensPerSec}
	if e.Kind != chat.EventStart {
		ev.Model = ""
	}
	c.mu().Lock()
	for i := range lb.info.Columns {
		col := &lb.info.Columns[i]
		if col.Column != e.Column {
			continue
		}
		for len(col.Answers) <= e.Turn {
			col.Answers = append(col.Answers, AnswerInfo{})
		}
		a := &col.Answers[e.Turn]
		switch e.Kind {
		case chat.EventStart:
			*a = AnswerInfo{}
		case chat.EventDelta:
			a.Text += e.Text
			ev.Text = e.Text
		case chat.EventError:
			a.Error, a.ErrorKind = e.Error, string(e.ErrorKind)
			ev.Error, ev.ErrorKind = e.Error, string(e.ErrorKind)
			a.Done = true
		case chat.EventDone:
			a.Done = true
		}
		a.TTFTMillis, a.OutputTokens, a.TokensPerSec = ev.TTFTMillis, e.OutputTokens, e.TokensPerSec
	}
	c.mu().Unlock()
	c.bus.publish(EventChat, ev)
}

// StopBattle stops a streaming battle: its columns end as they are, and it is stored.
func (c *Core) StopBattle(id string) error {
	c.mu().Lock()
	defer c.mu().Unlock()
	lb := c.chat.busy[id]
	if lb == nil || !lb.info.Running {
		return fmt.Errorf("stop battle %s: %w", id, ErrNoBattle)
	}
	lb.cancel()
	return nil
}

// WaitBattle blocks until the battle is neither streaming nor being voted on (or ctx
// ends) and returns it.
func (c *Core) WaitBattle(ctx context.Context, id string) (BattleInfo, error) {
	c.mu().Lock()
	lb := c.chat.busy[id]
	c.mu().Unlock()
	if lb != nil {
		select {
		case <-lb.done:
		case <-ctx.Done():
			return BattleInfo{}, ctx.Err()
		}
	}
	return c.Battle(ctx, id)
}

// liveInfo returns a copy of the battle while it is busy, or nil.
func (c *Core) liveInfo(id string) *BattleInfo {
	c.mu().Lock()
	defer c.mu().Unlock()
	lb := c.chat.busy[id]
	if lb == nil {
		return nil
	}
	info := cloneInfo(lb.info)
	return &info
}

func cloneInfo(in BattleInfo) BattleInfo {
	out := in
	out.Prompts = slices.Clone(in.Prompts)
	out.Models = slices.Clone(in.Models)
	out.Columns = make([]ColumnInfo, len(in.Columns))
	for i, col := range in.Columns {
		col.Answers = slices.Clone(col.Answers)
		out.Columns[i] = col
	}
	return out
}

// Vote records the user's verdict on a battle that has ended, scores the battle's
// quality against the user's history, and returns the battle with its models named.
func (c *Core) Vote(ctx context.Context, id string, in VoteInput) (BattleInfo, error) {
	outcome := strings.TrimSpace(in.Outcome)
	if len(outcome) == 1 {
		outcome = strings.ToUpper(outcome)
	} else {
		outcome = strings.ToLower(outcome)
	}
	if _, err := c.chat.acquire(id, &liveBattle{}); err != nil {
		return BattleInfo{}, fmt.Errorf("vote on battle %s: %w", id, err)
	}
	defer c.chat.release(id)
	sb, err := c.storedBattle(ctx, id)
	if err != nil {
		return BattleInfo{}, fmt.Errorf("vote on battle %s: %w", id, err)
	}
	b := fromStoredBattle(sb)
	if b.Vote != nil {
		return BattleInfo{}, fmt.Errorf("vote on battle %s: %w", id, ErrAlreadyVoted)
	}
	if err := b.CastVote(chat.Vote{Outcome: outcome, Reason: in.Reason, At: c.chat.clock()}); err != nil {
		return BattleInfo{}, chatBad(err)
	}
	v := storage.ChatVote{Outcome: b.Vote.Outcome, Reason: b.Vote.Reason, At: b.Vote.At}
	if err := c.store.VoteChatBattle(ctx, id, v); err != nil {
		if errors.Is(err, storage.ErrAlreadyVoted) {
			return BattleInfo{}, fmt.Errorf("vote on battle %s: %w", id, ErrAlreadyVoted)
		}
		return BattleInfo{}, err
	}
	prompts, outcomes, err := c.store.ChatHistory(ctx, b.Created, chatHistoryBattles)
	if err != nil {
		return BattleInfo{}, fmt.Errorf("vote on battle %s: %w", id, err)
	}
	q := chat.Assess(b, chat.QualityHistory{Prompts: prompts, Outcomes: outcomes})
	b.Quality = &q
	if err := c.store.SetChatQuality(ctx, id, toStoredQuality(q)); err != nil {
		return BattleInfo{}, fmt.Errorf("vote on battle %s: %w", id, err)
	}
	threshold := c.qualityMin(ctx)
	info := battleInfo(b, threshold, true)
	c.log.Info("chat vote", "battle", id, "outcome", v.Outcome, "quality", q.Score)
	c.bus.publish(EventChat, ChatEvent{Battle: id, Kind: ChatVoted, Turn: len(b.Prompts) - 1,
		Models: columnModels(b), Quality: info.Quality})
	return info, nil
}

// qualityMin is the chat.quality_min setting, or chat.DefaultQualityThreshold.
func (c *Core) qualityMin(ctx context.Context) float64 {
	v, err := c.SettingValue(ctx, SettingChatQualityMin)
	if err != nil {
		return chat.DefaultQualityThreshold
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return chat.DefaultQualityThreshold
	}
	return f
}

// validateQualityMin accepts a number from 0 to 1.
func validateQualityMin(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1) {
		return fmt.Errorf("%q is not a number from 0 to 1", v)
	}
	return nil
}

// Battle returns one battle, streaming or stored.
func (c *Core) Battle(ctx context.Context, id string) (BattleInfo, error) {
	if info := c.liveInfo(id); info != nil && info.Running {
		return *info, nil
	}
	sb, err := c.storedBattle(ctx, id)
	if err != nil {
		return BattleInfo{}, fmt.Errorf("read battle %s: %w", id, err)
	}
	return battleInfo(fromStoredBattle(sb), c.qualityMin(ctx), false), nil
}

// Battles returns the latest battles, newest first, those streaming now included.
func (c *Core) Battles(ctx context.Context, limit int) ([]BattleInfo, error) {
	if limit <= 0 {
		limit = 50
	}
	sbs, err := c.store.ChatBattles(ctx, time.Time{}, limit)
	if err != nil {
		return nil, fmt.Errorf("list battles: %w", err)
	}
	threshold := c.qualityMin(ctx)
	out := []BattleInfo{}
	seen := map[string]bool{}
	c.mu().Lock()
	for _, lb := range c.chat.busy {
		if lb.info.Running {
			out = append(out, cloneInfo(lb.info))
			seen[lb.info.ID] = true
		}
	}
	c.mu().Unlock()
	slices.SortFunc(out, func(a, b BattleInfo) int { return b.Created.Compare(a.Created) })
	for _, sb := range sbs {
		if !seen[sb.ID] {
			out = append(out, battleInfo(fromStoredBattle(sb), threshold, false))
		}
	}
	return out[:min(len(out), limit)], nil
}

// votedBattles reads every stored battle with a vote, oldest first.
func (c *Core) votedBattles(ctx context.Context) ([]*chat.Battle, error) {
	sbs, err := c.store.ChatBattles(ctx, time.Time{}, allBattles)
	if err != nil {
		return nil, err
	}
	var out []*chat.Battle
	for i := len(sbs) - 1; i >= 0; i-- {
		if sbs[i].Vote != nil {
			out = append(out, fromStoredBattle(sbs[i]))
		}
	}
	return out, nil
}

// Leaderboard fits Bradley–Terry ratings, with seeded bootstrap intervals, to the
// voted battles that pass the quality threshold.
func (c *Core) Leaderboard(ctx context.Context) (Leaderboard, error) {
	bs, err := c.votedBattles(ctx)
	if err != nil {
		return Leaderboard{}, fmt.Errorf("compute leaderboard: %w", err)
	}
	lb := Leaderboard{Threshold: c.qualityMin(ctx), Ratings: []RatingInfo{}}
	var kept []*chat.Battle
	for _, b := range bs {
		if b.Quality != nil && b.Quality.Passes(lb.Threshold) {
			kept = append(kept, b)
		} else {
			lb.Excluded++
		}
	}
	lb.Battles = len(kept)
	for _, r := range chat.Ratings(chat.Comparisons(kept), chat.RatingOptions{Rounds: leaderboardRounds, Seed: leaderboardSeed, Prior: chat.DefaultPrior}) {
		lb.Ratings = append(lb.Ratings, RatingInfo{Model: r.Model, Rating: r.Rating, Lower: r.Lower, Upper: r.Upper,
			Games: r.Games, Wins: r.Wins, Ties: r.Ties, Losses: r.Losses})
	}
	return lb, nil
}

// ExportChat writes the voted battles, oldest first, as JSON lines in the format
// ("arena" or "dpo") and returns how many records it wrote. Battles below the quality
// threshold are left out unless includeLowQuality.
func (c *Core) ExportChat(ctx context.Context, format string, w io.Writer, includeLowQuality bool) (int, error) {
	if format != ExportArena && format != ExportDPO {
		return 0, chatBad(fmt.Errorf("export chat: format must be %q or %q, not %q", ExportArena, ExportDPO, format))
	}
	bs, err := c.votedBattles(ctx)
	if err != nil {
		return 0, fmt.Errorf("export chat: %w", err)
	}
	opts := chat.ExportOptions{MinQuality: c.qualityMin(ctx)}
	if includeLowQuality {
		opts.MinQuality = math.Inf(-1)
	}
	if format == ExportArena {
		return chat.WriteArena(w, bs, opts)
	}
	return chat.WriteDPO(w, bs, opts)
}

// battleInfo shows a battle; the names only when it is revealed (or reveal is set,
// after the vote).
func battleInfo(b *chat.Battle, threshold float64, reveal bool) BattleInfo {
	info := BattleInfo{ID: b.ID, Created: b.Created, Blind: b.Blind, Revealed: reveal || b.Revealed(),
		Prompts: slices.Clone(b.Prompts), Columns: []ColumnInfo{}}
	if info.Prompts == nil {
		info.Prompts = []string{}
	}
	if info.Revealed {
		info.Models = slices.Clone(b.Models)
	}
	for _, s := range b.Sides {
		col := ColumnInfo{Column: s.Column, Answers: []AnswerInfo{}}
		if info.Revealed {
			col.Model = s.Model
		}
		for _, a := range s.Answers {
			col.Answers = append(col.Answers, AnswerInfo{Text: a.Text, Done: !a.Finished.IsZero(), Error: a.Error, ErrorKind: string(a.ErrorKind),
				TTFTMillis: a.TTFT.Milliseconds(), OutputTokens: a.OutputTokens, TokensPerSec: a.TokensPerSec})
		}
		info.Columns = append(info.Columns, col)
	}
	if b.Vote != nil {
		info.Vote = &VoteInfo{Outcome: b.Vote.Outcome, Reason: b.Vote.Reason, At: b.Vote.At}
	}
	if q := b.Quality; q != nil {
		info.Quality = &QualityInfo{Score: q.Score, Diversity: q.Diversity, Threshold: threshold, Passes: q.Passes(threshold)}
		for _, r := range q.Reasons {
			info.Quality.Reasons = append(info.Quality.Reasons, QualityReason{Signal: string(r.Signal), Detail: r.Detail, Penalty: r.Penalty})
		}
	}
	return info
}

// toStoredBattle and fromStoredBattle convert between the domain's battle and the
// database's: the same fields, storage knowing no chat.
func toStoredBattle(b *chat.Battle) storage.ChatBattle {
	sb := storage.ChatBattle{ID: b.ID, Created: b.Created, Blind: b.Blind, Language: b.Language, MaxTokens: b.MaxTokens,
		Temperature: b.Temperature, Models: slices.Clone(b.Models), Prompts: slices.Clone(b.Prompts)}
	for _, s := range b.Sides {
		ss := storage.ChatSide{Column: s.Column, Model: s.Model}
		for _, m := range s.History {
			ss.History = append(ss.History, storage.ChatMessage{Role: string(m.Role), Content: m.Content})
		}
		for _, a := range s.Answers {
			ss.Answers = append(ss.Answers, storage.ChatAnswer{Text: a.Text, Started: a.Started, FirstToken: a.FirstToken,
				Finished: a.Finished, TTFT: a.TTFT, InputTokens: a.InputTokens, OutputTokens: a.OutputTokens,
				TokensPerSec: a.TokensPerSec, StopReason: a.StopReason, Error: a.Error, ErrorKind: string(a.ErrorKind)})
		}
		sb.Sides = append(sb.Sides, ss)
	}
	if b.Vote != nil {
		sb.Vote = &storage.ChatVote{Outcome: b.Vote.Outcome, Reason: b.Vote.Reason, At: b.Vote.At}
	}
	if b.Quality != nil {
		q := toStoredQuality(*b.Quality)
		sb.Quality = &q
	}
	return sb
}

func toStoredQuality(q chat.Quality) storage.ChatQuality {
	out := storage.ChatQuality{Score: q.Score, Diversity: q.Diversity}
	for _, r := range q.Reasons {
		out.Reasons = append(out.Reasons, storage.ChatQualityReason{Signal: string(r.Signal), Detail: r.Detail, Penalty: r.Penalty})
	}
	return out
}

func fromStoredBattle(sb storage.ChatBattle) *chat.Battle {
	b := &chat.Battle{ID: sb.ID, Created: sb.Created, Blind: sb.Blind, Language: sb.Language, MaxTokens: sb.MaxTokens,
		Temperature: sb.Temperature, Models: slices.Clone(sb.Models), Prompts: slices.Clone(sb.Prompts)}
	for _, ss := range sb.Sides {
		s := chat.Side{Column: ss.Column, Model: ss.Model}
		for _, m := range ss.History {
			s.History = append(s.History, chat.Message{Role: chat.Role(m.Role), Content: m.Content})
		}
		for _, a := range ss.Answers {
			s.Answers = append(s.Answers, chat.Answer{Text: a.Text, Started: a.Started, FirstToken: a.FirstToken,
				Finished: a.Finished, TTFT: a.TTFT, InputTokens: a.InputTokens, OutputTokens: a.OutputTokens,
				TokensPerSec: a.TokensPerSec, StopReason: a.StopReason, Error: a.Error, ErrorKind: chat.ErrorKind(a.ErrorKind)})
		}
		b.Sides = append(b.Sides, s)
	}
	if sb.Vote != nil {
		b.Vote = &chat.Vote{Outcome: sb.Vote.Outcome, Reason: sb.Vote.Reason, At: sb.Vote.At}
	}
	if q := sb.Quality; q != nil {
		b.Quality = &chat.Quality{Score: q.Score, Diversity: q.Diversity}
		for _, r := range q.Reasons {
			b.Quality.Reasons = append(b.Quality.Reasons, chat.Reason{Signal: chat.Signal(r.Signal), Detail: r.Detail, Penalty: r.Penalty})
		}
	}
	return b
}
