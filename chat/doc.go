// Package chat sends one prompt to two to four models (OpenAI-compatible servers and
// Anthropic), streams their answers side by side, records blind votes as battles, scores
// their quality and exports them as preference data (Arena battles, DPO pairs).
//
// NewProvider builds a Provider from a ProviderConfig; RunBattle, ContinueBattle and
// Regenerate stream a Battle's columns in parallel and report BattleEvents; CastVote
// records the verdict; Assess gives a Quality; Ratings fits the leaderboard; WriteArena
// and WriteDPO export JSON lines. Package chattest holds loopback fakes of both APIs.
package chat
