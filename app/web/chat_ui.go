package web

import (
	"net/http"

	"github.com/gata-contrib/gata/app/core"
)

// chatProvidersPage is the providers card's list.
type chatProvidersPage struct {
	Providers   []core.ProviderInfo
	Unavailable string // why the providers could not be read
	Secrets     core.SecretsInfo
}

// chatHistoryPage lists the latest battles.
type chatHistoryPage struct {
	Battles     []core.BattleInfo
	Unavailable string
}

// chatHistoryLimit is how many battles the history card lists.
const chatHistoryLimit = 30

// chatModelsPage is the battle form's model picker.
type chatModelsPage struct {
	Providers   []core.ProviderModels
	Unavailable string
	Count       int // models offered in all
}

// chatBattlePage is one battle: its columns side by side and what can be done with it.
type chatBattlePage struct {
	core.BattleInfo
	Columns []chatColumn
	CanVote bool // ended and not voted yet
	CanAct  bool // not running and not voted: follow up, regenerate
}

// chatColumn is a column with its label ("Model A") and one answer per prompt.
type chatColumn struct {
	core.ColumnInfo
	Label   string
	Answers []chatAnswer
}

// chatAnswer is an answer with the prompt it answers.
type chatAnswer struct {
	core.AnswerInfo
	Turn   int
	Prompt string
}

func newChatBattlePage(b core.BattleInfo) *chatBattlePage {
	p := &chatBattlePage{BattleInfo: b}
	p.CanAct = !b.Running && b.Vote == nil
	p.CanVote = p.CanAct && len(b.Columns) > 0
	for _, c := range b.Columns {
		col := chatColumn{ColumnInfo: c, Label: "Model " + c.Column}
		for i, a := range c.Answers {
			ans := chatAnswer{AnswerInfo: a, Turn: i}
			if i < len(b.Prompts) {
				ans.Prompt = b.Prompts[i]
			}
			col.Answers = append(col.Answers, ans)
		}
		p.Columns = append(p.Columns, col)
	}
	return p
}

// chatLeaderboardPage is the leaderboard card.
type chatLeaderboardPage struct {
	core.Leaderboard
	Rows        []chatRating
	Unavailable string
}

// chatRating is a leaderboard row with its place (1 is the best).
type chatRating struct {
	core.RatingInfo
	Rank int
}

func (h *handlers) uiChatProviders(w http.ResponseWriter, r *http.Request) {
	ps, err := h.core.Providers(r.Context())
	p := chatProvidersPage{Providers: ps, Secrets: h.core.Secrets(r.Context())}
	if err != nil {
		p.Unavailable = err.Error()
	}
	h.render(w, r, "chat-providers", p)
}

func (h *handlers) uiChatHistory(w http.ResponseWriter, r *http.Request) {
	bs, err := h.core.Battles(r.Context(), chatHistoryLimit)
	p := chatHistoryPage{Battles: bs}
	if err != nil {
		p.Unavailable = err.Error()
	}
	h.render(w, r, "chat-history", p)
}

func (h *handlers) uiChatModels(w http.ResponseWriter, r *http.Request) {
	ms, err := h.core.ChatModels(r.Context())
	p := chatModelsPage{Providers: ms}
	if err != nil {
		p.Unavailable = err.Error()
	}
	for _, m := range ms {
		p.Count += len(m.Models)
	}
	h.render(w, r, "chat-models", p)
}

func (h *handlers) uiChatBattle(w http.ResponseWriter, r *http.Request) {
	b, err := h.core.Battle(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, "chat-battle", newChatBattlePage(b))
}

func (h *handlers) uiChatLeaderboard(w http.ResponseWriter, r *http.Request) {
	lb, err := h.core.Leaderboard(r.Context())
	p := chatLeaderboardPage{Leaderboard: lb}
	if err != nil {
		p.Unavailable = err.Error()
	}
	for i, r := range lb.Ratings {
		p.Rows = append(p.Rows, chatRating{RatingInfo: r, Rank: i + 1})
	}
	h.render(w, r, "chat-leaderboard", p)
}
