package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrAlreadyVoted is returned by VoteChatBattle for a battle that has its vote.
var ErrAlreadyVoted = errors.New("battle already has a vote")

// ChatProvider is a configured chat provider. It mirrors chat.ProviderConfig less the
// key, which lives in the keyring only.
type ChatProvider struct {
	Name      string
	Kind      string // "openai" or "anthropic"
	BaseURL   string
	APIKeyEnv string
	Models    []string
	Timeout   time.Duration
	Created   time.Time
	Updated   time.Time
}

// ChatMessage is one {role, content} message.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatAnswer is one column's answer to one prompt (mirrors chat.Answer).
type ChatAnswer struct {
	Text         string
	Started      time.Time
	FirstToken   time.Time
	Finished     time.Time
	TTFT         time.Duration // stored in whole milliseconds
	InputTokens  int
	OutputTokens int
	TokensPerSec float64
	StopReason   string
	Error        string
	ErrorKind    string
}

// ChatSide is one column of a battle: the blind mapping and the model's conversation.
type ChatSide struct {
	Column  string // "A" … "D"
	Model   string // "provider/model"
	History []ChatMessage
	Answers []ChatAnswer // one per prompt
}

// ChatVote is the vote on a battle.
type ChatVote struct {
	Outcome string // "A" … "D", "tie" or "bad"
	Reason  string
	At      time.Time
}

// ChatQualityReason is one signal that lowered a battle's quality.
type ChatQualityReason struct {
	Signal  string  `json:"signal"`
	Detail  string  `json:"detail"`
	Penalty float64 `json:"penalty"`
}

// ChatQuality is a battle's quality record.
type ChatQuality struct {
	Score     float64
	Diversity float64
	Reasons   []ChatQualityReason
	Assessed  time.Time
}

// ChatBattle is a stored battle (mirrors chat.Battle; the app converts).
type ChatBattle struct {
	ID          string
	Created     time.Time
	Updated     time.Time // set by SaveChatBattle
	Blind       bool
	Language    string
	MaxTokens   int
	Temperature *float64
	Models      []string
	Prompts     []string
	Sides       []ChatSide // in column order
	Vote        *ChatVote
	Quality     *ChatQuality
}

// SaveChatProvider adds or replaces a provider.
func (s *Store) SaveChatProvider(ctx context.Context, p ChatProvider) error {
	if p.Models == nil {
		p.Models = []string{}
	}
	models, err := json.Marshal(p.Models)
	if err != nil {
		return fmt.Errorf("save chat provider %q: %w", p.Name, err)
	}
	now := time.Now()
	if p.Created.IsZero() {
		p.Created = now
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO chat_providers(name, kind, base_url, api_key_env, models, timeout_ms, created, updated)
		 VALUES(?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, base_url = excluded.base_url,
		   api_key_env = excluded.api_key_env, models = excluded.models, timeout_ms = excluded.timeout_ms,
		   updated = excluded.updated`,
		p.Name, p.Kind, p.BaseURL, p.APIKeyEnv, string(models), p.Timeout.Milliseconds(), millis(p.Created), millis(now))
	if err != nil {
		return fmt.Errorf("save chat provider %q: %w", p.Name, err)
	}
	return nil
}

// ChatProviders returns the providers by name.
func (s *Store) ChatProviders(ctx context.Context) ([]ChatProvider, error) {
	out, err := queryRows(ctx, s.db, scanChatProvider,
		`SELECT name, kind, base_url, api_key_env, models, timeout_ms, created, updated FROM chat_providers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read chat providers: %w", err)
	}
	return out, nil
}

func scanChatProvider(sc scanner) (ChatProvider, error) {
	var p ChatProvider
	var models string
	var timeout, created, updated int64
	if err := sc.Scan(&p.Name, &p.Kind, &p.BaseURL, &p.APIKeyEnv, &models, &timeout, &created, &updated); err != nil {
		return ChatProvider{}, err
	}
	if err := json.Unmarshal([]byte(models), &p.Models); err != nil {
		return ChatProvider{}, fmt.Errorf("decode models of provider %q: %w", p.Name, err)
	}
	p.Timeout = time.Duration(timeout) * time.Millisecond
	p.Created, p.Updated = fromMillis(created), fromMillis(updated)
	return p, nil
}

// DeleteChatProvider removes a provider, or returns an error wrapping ErrNotFound.
func (s *Store) DeleteChatProvider(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM chat_providers WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete chat provider %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete chat provider %q: %w", name, ErrNotFound)
	}
	return nil
}

// SaveChatBattle stores the battle whole (its prompts, columns, answers and, when set,
// vote and quality), replacing what was stored under its id, in one transaction.
func (s *Store) SaveChatBattle(ctx context.Context, b ChatBattle) error {
	action := fmt.Sprintf("save chat battle %s", b.ID)
	fail := func(err error) error { return fmt.Errorf("%s: %w", action, err) }
	if b.ID == "" {
		return fail(errors.New("no id"))
	}
	if b.Created.IsZero() {
		b.Created = time.Now()
	}
	if b.Models == nil {
		b.Models = []string{}
	}
	models, err := json.Marshal(b.Models)
	if err != nil {
		return fail(err)
	}
	return s.withTx(ctx, action, func(tx *sql.Tx) error {
		// Deleting cascades to the prompts, columns, answers, vote and quality.
		if _, err := tx.ExecContext(ctx, `DELETE FROM chat_battles WHERE id = ?`, b.ID); err != nil {
			return fail(err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO chat_battles(id, created, updated, blind, language, max_tokens, temperature, models) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, millis(b.Created), millis(time.Now()), b.Blind, b.Language, b.MaxTokens, b.Temperature, string(models)); err != nil {
			return fail(err)
		}
		for i, p := range b.Prompts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO chat_prompts(battle_id, turn, prompt) VALUES(?, ?, ?)`, b.ID, i, p); err != nil {
				return fail(err)
			}
		}
		for _, sd := range b.Sides {
			if sd.History == nil {
				sd.History = []ChatMessage{}
			}
			hist, err := json.Marshal(sd.History)
			if err != nil {
				return fail(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO chat_sides(battle_id, col, model, history) VALUES(?, ?, ?, ?)`,
				b.ID, sd.Column, sd.Model, string(hist)); err != nil {
				return fail(fmt.Errorf("column %s: %w", sd.Column, err))
			}
			for turn, a := range sd.Answers {
				if _, err := tx.ExecContext(ctx,
					`INSERT INTO chat_answers(battle_id, col, turn, content, started, first_token, finished, ttft_ms,
					   input_tokens, output_tokens, tokens_per_sec, stop_reason, error, error_kind)
					 VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					b.ID, sd.Column, turn, a.Text, millis(a.Started), millis(a.FirstToken), millis(a.Finished), a.TTFT.Milliseconds(),
					a.InputTokens, a.OutputTokens, a.TokensPerSec, a.StopReason, a.Error, a.ErrorKind); err != nil {
					return fail(err)
				}
			}
		}
		if b.Vote != nil {
			if err := insertVote(ctx, tx, b.ID, *b.Vote); err != nil {
				return fail(err)
			}
		}
		if b.Quality != nil {
			if err := upsertQuality(ctx, tx, b.ID, *b.Quality); err != nil {
				return fail(err)
			}
		}
		return nil
	})
}

func insertVote(ctx context.Context, db execer, id string, v ChatVote) error {
	if v.At.IsZero() {
		v.At = time.Now()
	}
	_, err := db.ExecContext(ctx, `INSERT INTO chat_votes(battle_id, outcome, reason, voted_at) VALUES(?, ?, ?, ?)`,
		id, v.Outcome, v.Reason, millis(v.At))
	return err
}

func upsertQuality(ctx context.Context, db execer, id string, q ChatQuality) error {
	if q.Assessed.IsZero() {
		q.Assessed = time.Now()
	}
	if q.Reasons == nil {
		q.Reasons = []ChatQualityReason{}
	}
	reasons, err := json.Marshal(q.Reasons)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx,
		`INSERT OR REPLACE INTO chat_quality(battle_id, score, diversity, reasons, assessed) VALUES(?, ?, ?, ?, ?)`,
		id, q.Score, q.Diversity, string(reasons), millis(q.Assessed))
	return err
}

// VoteChatBattle records the vote on a stored battle: an error wrapping ErrNotFound
// when there is no such battle, ErrAlreadyVoted when it has a vote.
func (s *Store) VoteChatBattle(ctx context.Context, id string, v ChatVote) error {
	action := fmt.Sprintf("vote on battle %s", id)
	fail := func(err error) error { return fmt.Errorf("%s: %w", action, err) }
	return s.withTx(ctx, action, func(tx *sql.Tx) error {
		var voted int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM chat_votes WHERE battle_id = b.id) FROM chat_battles b WHERE b.id = ?`, id).Scan(&voted)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fail(ErrNotFound)
		case err != nil:
			return fail(err)
		case voted > 0:
			return fail(ErrAlreadyVoted)
		}
		if err := insertVote(ctx, tx, id, v); err != nil {
			return fail(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chat_battles SET updated = ? WHERE id = ?`, millis(time.Now()), id); err != nil {
			return fail(err)
		}
		return nil
	})
}

// SetChatQuality stores (or replaces) a battle's quality record.
func (s *Store) SetChatQuality(ctx context.Context, id string, q ChatQuality) error {
	if err := upsertQuality(ctx, s.db, id, q); err != nil {
		return fmt.Errorf("store quality of battle %s: %w", id, err)
	}
	return nil
}

// ChatBattle returns the battle with the id, or an error wrapping ErrNotFound.
func (s *Store) ChatBattle(ctx context.Context, id string) (ChatBattle, error) {
	bs, err := s.chatBattles(ctx, `WHERE b.id = ?`, id)
	if err != nil {
		return ChatBattle{}, fmt.Errorf("read chat battle %s: %w", id, err)
	}
	if len(bs) == 0 {
		return ChatBattle{}, fmt.Errorf("read chat battle %s: %w", id, ErrNotFound)
	}
	return bs[0], nil
}

// ChatBattles returns up to limit battles created before the time (zero: any), newest first.
func (s *Store) ChatBattles(ctx context.Context, before time.Time, limit int) ([]ChatBattle, error) {
	cut := int64(1<<63 - 1)
	if !before.IsZero() {
		cut = millis(before)
	}
	bs, err := s.chatBattles(ctx, `WHERE b.created < ? ORDER BY b.created DESC, b.id DESC LIMIT ?`, cut, limit)
	if err != nil {
		return nil, fmt.Errorf("read chat battles: %w", err)
	}
	return bs, nil
}

// ChatHistory returns the prompts and vote outcomes of the battles created before the
// time, oldest first, at most limit battles: what the quality signals compare with.
func (s *Store) ChatHistory(ctx context.Context, before time.Time, limit int) (prompts, outcomes []string, err error) {
	var ids []string
	err = eachRow(ctx, s.db, func(sc scanner) error {
		var id, outcome string
		if err := sc.Scan(&id, &outcome); err != nil {
			return err
		}
		ids = append(ids, id)
		if outcome != "" {
			outcomes = append(outcomes, outcome)
		}
		return nil
	}, `SELECT id, COALESCE((SELECT outcome FROM chat_votes v WHERE v.battle_id = b.id), '') FROM
		   (SELECT id, created FROM chat_battles WHERE created < ? ORDER BY created DESC, id DESC LIMIT ?) b
		 ORDER BY created, id`, millis(before), limit)
	if err != nil {
		return nil, nil, fmt.Errorf("read chat history: %w", err)
	}
	for _, id := range ids {
		ps, err := s.chatPrompts(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("read chat history: %w", err)
		}
		prompts = append(prompts, ps...)
	}
	return prompts, outcomes, nil
}

func (s *Store) chatPrompts(ctx context.Context, id string) ([]string, error) {
	return queryRows(ctx, s.db, scanString, `SELECT prompt FROM chat_prompts WHERE battle_id = ? ORDER BY turn`, id)
}

func (s *Store) chatBattles(ctx context.Context, where string, args ...any) ([]ChatBattle, error) {
	out, err := queryRows(ctx, s.db, scanChatBattle,
		`SELECT b.id, b.created, b.updated, b.blind, b.language, b.max_tokens, b.temperature, b.models,
		   v.outcome, v.reason, v.voted_at, q.score, q.diversity, q.reasons, q.assessed
		 FROM chat_battles b LEFT JOIN chat_votes v ON v.battle_id = b.id LEFT JOIN chat_quality q ON q.battle_id = b.id `+where, args...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.fillBattle(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanChatBattle scans a battle with its vote and quality (chatBattles' columns).
func scanChatBattle(sc scanner) (ChatBattle, error) {
	var b ChatBattle
	var created, updated int64
	var models string
	var outcome, reason, reasons sql.NullString
	var votedAt, assessed sql.NullInt64
	var score, diversity sql.NullFloat64
	if err := sc.Scan(&b.ID, &created, &updated, &b.Blind, &b.Language, &b.MaxTokens, &b.Temperature, &models,
		&outcome, &reason, &votedAt, &score, &diversity, &reasons, &assessed); err != nil {
		return ChatBattle{}, err
	}
	b.Created, b.Updated = fromMillis(created), fromMillis(updated)
	if err := json.Unmarshal([]byte(models), &b.Models); err != nil {
		return ChatBattle{}, fmt.Errorf("decode models of battle %s: %w", b.ID, err)
	}
	if outcome.Valid {
		b.Vote = &ChatVote{Outcome: outcome.String, Reason: reason.String, At: fromMillis(votedAt.Int64)}
	}
	if score.Valid {
		b.Quality = &ChatQuality{Score: score.Float64, Diversity: diversity.Float64, Assessed: fromMillis(assessed.Int64)}
		if err := json.Unmarshal([]byte(reasons.String), &b.Quality.Reasons); err != nil {
			return ChatBattle{}, fmt.Errorf("decode quality of battle %s: %w", b.ID, err)
		}
	}
	return b, nil
}

// fillBattle reads a battle's prompts, columns and answers.
func (s *Store) fillBattle(ctx context.Context, b *ChatBattle) error {
	var err error
	if b.Prompts, err = s.chatPrompts(ctx, b.ID); err != nil {
		return err
	}
	b.Sides, err = queryRows(ctx, s.db, func(sc scanner) (ChatSide, error) {
		var sd ChatSide
		var hist string
		if err := sc.Scan(&sd.Column, &sd.Model, &hist); err != nil {
			return ChatSide{}, err
		}
		if err := json.Unmarshal([]byte(hist), &sd.History); err != nil {
			return ChatSide{}, fmt.Errorf("decode history of battle %s column %s: %w", b.ID, sd.Column, err)
		}
		if len(sd.History) == 0 {
			sd.History = nil
		}
		return sd, nil
	}, `SELECT col, model, history FROM chat_sides WHERE battle_id = ? ORDER BY col`, b.ID)
	if err != nil {
		return err
	}
	for i := range b.Sides {
		sd := &b.Sides[i]
		sd.Answers, err = queryRows(ctx, s.db, scanChatAnswer,
			`SELECT content, started, first_token, finished, ttft_ms, input_tokens, output_tokens, tokens_per_sec, stop_reason, error, error_kind
			 FROM chat_answers WHERE battle_id = ? AND col = ? ORDER BY turn`, b.ID, sd.Column)
		if err != nil {
			return err
		}
	}
	return nil
}

func scanChatAnswer(sc scanner) (ChatAnswer, error) {
	var a ChatAnswer
	var started, first, finished, ttft int64
	if err := sc.Scan(&a.Text, &started, &first, &finished, &ttft, &a.InputTokens, &a.OutputTokens, &a.TokensPerSec,
		&a.StopReason, &a.Error, &a.ErrorKind); err != nil {
		return ChatAnswer{}, err
	}
	a.Started, a.FirstToken, a.Finished = fromMillis(started), fromMillis(first), fromMillis(finished)
	a.TTFT = time.Duration(ttft) * time.Millisecond
	return a, nil
}
